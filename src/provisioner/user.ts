// Resolve an image/CRI user spec against the image's own /etc/passwd and
// /etc/group (never the host's), with CRI semantics: a numeric uid needs no
// passwd entry (gid 0 then), a name must exist.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { secureResolveSync } from '../images/fsutil.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Primary gid first, then every group listing the user as a member. */
  additionalGids: number[];
  username?: string;
  home?: string;
}

export class UserResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserResolutionError';
  }
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 0xfffffffe;
const MAX_FILE = 4 * 1024 * 1024;

function parseId(s: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

/**
 * Read a file of the image. Symlinks are resolved as inside the container
 * (absolute targets restart at the rootfs, `..` stops there), so a link can
 * never reach a host file; the final file must be a regular file (a FIFO or
 * device there must not hang or feed the daemon). Missing → undefined.
 */
export async function readImageFile(rootfs: string, rel: string): Promise<string | undefined> {
  // Synchronous: two small files of a local overlay, read at every CreateContainer. Each await
  // on fs/promises was a thread-pool round trip (about ten for /etc/passwd and /etc/group).
  const p = secureResolveSync(rootfs, rel);
  let fd: number;
  try {
    fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c === 'ENOENT' || c === 'ENOTDIR') return undefined;
    throw new UserResolutionError(`cannot open ${rel} of the image: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UserResolutionError(`${rel} of the image is not a regular file`);
    if (st.size > MAX_FILE) throw new UserResolutionError(`${rel} of the image is too large`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = parseId(f[2]!);
    if (gid === undefined) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean) });
  }
  return out;
}

/**
 * Resolve `user` — "", "uid", "name", "uid:gid", "name:group", "uid:group"
 * or "name:gid" — inside `rootfs`.
 */
export async function readImageUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const colon = user.indexOf(':');
  const userPart = colon >= 0 ? user.slice(0, colon) : user;
  const groupPart = colon >= 0 ? user.slice(colon + 1) : undefined;
  const passwd = parsePasswd((await readImageFile(rootfs, 'etc/passwd')) ?? '');
  const groups = parseGroup((await readImageFile(rootfs, 'etc/group')) ?? '');

  let uid: number;
  let gid = 0;
  let entry: PasswdEntry | undefined;
  if (userPart === '') {
    uid = 0;
    entry = passwd.find((p) => p.uid === 0);
  } else {
    const n = parseId(userPart);
    if (n !== undefined) {
      uid = n;
      entry = passwd.find((p) => p.uid === n);
    } else {
      entry = passwd.find((p) => p.name === userPart);
      if (!entry) throw new UserResolutionError(`no user ${JSON.stringify(userPart)} in the image's /etc/passwd`);
      uid = entry.uid;
    }
  }
  if (entry) gid = entry.gid;

  if (groupPart !== undefined && groupPart !== '') {
    const n = parseId(groupPart);
    if (n !== undefined) {
      gid = n;
    } else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new UserResolutionError(`no group ${JSON.stringify(groupPart)} in the image's /etc/group`);
      gid = g.gid;
    }
  }

  const additional = [gid];
  if (entry) {
    for (const g of groups) if (g.members.includes(entry.name) && !additional.includes(g.gid)) additional.push(g.gid);
  }
  return { uid, gid, additionalGids: additional, username: entry?.name, home: entry?.home || undefined };
}
