// Original file: api/runtime-v1.proto


export interface StopPodSandboxResponse {
}

export interface StopPodSandboxResponse__Output {
}
