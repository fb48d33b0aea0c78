// Original file: api/runtime-v1.proto


export interface CheckpointPodResponse {
}

export interface CheckpointPodResponse__Output {
}
