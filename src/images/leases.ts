// Image leases, as containerd's: a CreateContainer in flight holds its image
// from the moment it resolves it until its container record exists (which
// then holds it) or its cleanup is done. Removal checks the leases and marks
// the image as being removed in one synchronous step, so each side sees the
// other: a lease taken first refuses the removal; a lease asked for during a
// removal is refused, and its caller waits for the removal to end.
// In-process only: the daemon is the only process that creates containers.

interface Lease {
  holder: string;
}

export class ImageLeases {
  private readonly held = new Map<string, Set<Lease>>();
  private readonly removing = new Map<string, Promise<void>>();

  /**
   * Lease `imageId` for `holder` (named in RemoveImage's refusal). Returns the
   * release function (idempotent), or undefined while the image is being
   * removed: wait for `removal(imageId)`, then resolve the reference again.
   */
  acquire(imageId: string, holder: string): (() => void) | undefined {
    if (this.removing.has(imageId)) return undefined;
    const lease: Lease = { holder };
    let set = this.held.get(imageId);
    if (!set) this.held.set(imageId, (set = new Set()));
    set.add(lease);
    return () => {
      if (!set.delete(lease)) return;
      if (set.size === 0 && this.held.get(imageId) === set) this.held.delete(imageId);
    };
  }

  /** Who holds leases on the image now. */
  holders(imageId: string): string[] {
    return [...(this.held.get(imageId) ?? [])].map((l) => l.holder);
  }

  /** Settles when the image's removal in progress ends (at once when none is). */
  removal(imageId: string): Promise<void> {
    return this.removing.get(imageId) ?? Promise.resolve();
  }

  /**
   * Start removing the image unless someone uses it: `users` (the container
   * records) plus the lease holders. Used → the users, nothing marked.
   * Otherwise new leases are refused until the returned `done` is called.
   */
  beginRemoval(imageId: string, users: string[] = []): { users: string[] } | { done: () => void } {
    const using = [...users, ...this.holders(imageId)];
    if (using.length > 0) return { users: using };
    if (this.removing.has(imageId)) throw new Error(`image ${imageId} is already being removed`);
    let end!: () => void;
    const removal = new Promise<void>((r) => (end = r));
    this.removing.set(imageId, removal);
    return {
      done: () => {
        if (this.removing.get(imageId) === removal) this.removing.delete(imageId);
        end();
      },
    };
  }
}
