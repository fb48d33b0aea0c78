// Original file: api/runtime-v1.proto


export interface StopContainerResponse {
}

export interface StopContainerResponse__Output {
}
