import type { VersionRequest__Output } from '../../../api/generated/runtime/v1/VersionRequest.js';
import type { VersionResponse } from '../../../api/generated/runtime/v1/VersionResponse.js';
import type { RuntimeContext } from '../context.js';
import { RUNTIME_VERSION } from '../../version.js';

export async function version(ctx: RuntimeContext, req: VersionRequest__Output): Promise<VersionResponse> {
  void ctx;
  void req;
  // "0.1.0" is the kubelet API version constant containerd and CRI-O report too.
  return { version: '0.1.0', runtime_name: 'cri-mesos', runtime_version: RUNTIME_VERSION, runtime_api_version: 'v1' };
}
