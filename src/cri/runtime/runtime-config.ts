import type { RuntimeConfigRequest__Output } from '../../../api/generated/runtime/v1/RuntimeConfigRequest.js';
import type { RuntimeConfigResponse } from '../../../api/generated/runtime/v1/RuntimeConfigResponse.js';
import type { RuntimeContext } from '../context.js';

export async function runtimeConfig(ctx: RuntimeContext, req: RuntimeConfigRequest__Output): Promise<RuntimeConfigResponse> {
  void ctx;
  void req;
  // No systemd on the hosts we target: cgroups are managed through cgroupfs.
  return { linux: { cgroup_driver: 'CGROUPFS' } };
}
