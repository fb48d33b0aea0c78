// Original file: api/runtime-v1.proto


export interface CheckpointContainerResponse {
}

export interface CheckpointContainerResponse__Output {
}
