// postStart and preStop hooks (pkg/kubelet/lifecycle/handlers.go): exec through ExecSync (no
// timeout of its own), an HTTP GET to the pod (only a failed request fails it, not its status
// code), or a sleep.
import type { CriClient } from './cri-client.js';
import { probeURL } from './probe.js';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Container, LifecycleHandler } from './types.js';

export const HOOK_USER_AGENT = 'kube-lifecycle/1.34';

/** Runs a hook; resolves to an error message when it failed, else undefined. */
export async function runHook(cri: CriClient, h: LifecycleHandler, container: Container, containerId: string, podIP: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    if (h.exec) {
      const res = await cri.execSync(containerId, h.exec.command ?? [], 0);
      if (res.exit_code === 0) return undefined;
      const out = Buffer.concat([res.stdout ?? Buffer.alloc(0), res.stderr ?? Buffer.alloc(0)]).toString('utf8');
      return `Exec lifecycle hook (${JSON.stringify(h.exec.command)}) for Container "${container.name}" failed - error: command exited with ${res.exit_code}, message: ${JSON.stringify(out)}`;
    }
    if (h.httpGet) {
      if (!h.httpGet.host && !podIP) return `HTTP lifecycle hook (${h.httpGet.path}) for Container "${container.name}" failed - error: failed to find networking container`;
      const url = probeURL(h.httpGet, container, podIP);
      const headers: Record<string, string> = { 'User-Agent': HOOK_USER_AGENT };
      for (const hd of h.httpGet.httpHeaders ?? []) headers[hd.name] = hd.value;
      await new Promise<void>((resolve, reject) => {
        const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { headers, rejectUnauthorized: false, ...(signal ? { signal } : {}) }, (res) => {
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      return undefined;
    }
    if (h.sleep) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, h.sleep!.seconds * 1000);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
      return undefined;
    }
    return 'Cannot run handler: invalid handler';
  } catch (err) {
    const kind = h.exec ? `Exec lifecycle hook (${JSON.stringify(h.exec.command)})` : `HTTP lifecycle hook (${h.httpGet?.path ?? ''})`;
    return `${kind} for Container "${container.name}" failed - error: ${(err as Error).message}`;
  }
}
