// Original file: api/runtime-v1.proto


export interface RemoveContainerResponse {
}

export interface RemoveContainerResponse__Output {
}
