// Original file: api/runtime-v1.proto


export interface GetEventsRequest {
}

export interface GetEventsRequest__Output {
}
