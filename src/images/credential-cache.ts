// The credentials PullImage requests carried, kept in memory per repository (never on disk).
// A docker pod's container whose image the Docker Engine has to pull itself gets the auth the
// kubelet gave when it pulled that image (the kubelet sends auth with PullImage only, never
// with CreateContainer). A daemon restart forgets them: the config's registry.auths remain.
import type { Credentials } from './registry.js';
import { parseReference } from './reference.js';

interface Entry {
  creds: Credentials;
  at: number;
}

export class CredentialCache {
  private readonly byRepo = new Map<string, Entry>();

  /** At most `max` repositories (the oldest go first), each for `ttlMs` after its last pull. */
  constructor(
    private readonly max = 1024,
    private readonly ttlMs = 24 * 3600_000,
  ) {}

  remember(ref: string, creds: Credentials | undefined, now = Date.now()): void {
    const repo = repository(ref);
    if (!repo) return;
    this.byRepo.delete(repo);
    if (!creds) return; // an anonymous pull succeeded: the old credentials are not needed
    this.byRepo.set(repo, { creds, at: now });
    while (this.byRepo.size > this.max) this.byRepo.delete(this.byRepo.keys().next().value!);
  }

  lookup(ref: string, now = Date.now()): Credentials | undefined {
    const repo = repository(ref);
    const e = repo ? this.byRepo.get(repo) : undefined;
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.byRepo.delete(repo!);
      return undefined;
    }
    return e.creds;
  }
}

function repository(ref: string): string | undefined {
  try {
    return parseReference(ref).name;
  } catch {
    return undefined;
  }
}
