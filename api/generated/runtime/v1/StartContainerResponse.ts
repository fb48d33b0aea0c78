// Original file: api/runtime-v1.proto


export interface StartContainerResponse {
}

export interface StartContainerResponse__Output {
}
