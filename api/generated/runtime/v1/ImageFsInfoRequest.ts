// Original file: api/runtime-v1.proto


export interface ImageFsInfoRequest {
}

export interface ImageFsInfoRequest__Output {
}
