// Original file: api/runtime-v1.proto


export interface RemoveImageResponse {
}

export interface RemoveImageResponse__Output {
}
