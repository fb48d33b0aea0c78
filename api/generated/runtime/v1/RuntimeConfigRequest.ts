// Original file: api/runtime-v1.proto


export interface RuntimeConfigRequest {
}

export interface RuntimeConfigRequest__Output {
}
