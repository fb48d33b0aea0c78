// An image of cri-mesos' own store as a docker-archive stream (`docker save` format: manifest.json,
// the config blob and the layer blobs as they are stored), for `docker load` into the Engine.
// This is how a docker pod runs an image the kubelet pulled through cri-mesos' PullImage (with
// its auth, mirrors and insecure hosts) when the Engine does not have it.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ImageRecord, ImageStore } from '../images/store.js';

const hex = (digest: string) => digest.replace(/^sha256:/, '');

/** The archive; `tags` become its RepoTags. Errors end the stream with them. */
export function dockerArchive(store: ImageStore, image: ImageRecord, tags: string[]): Readable {
  const pack = tar.pack();
  const out = new PassThrough();
  pack.pipe(out);
  const entry = async (name: string, path: string) => {
    const { size } = await stat(path);
    const sink = pack.entry({ name, size, mode: 0o644 });
    await pipeline(createReadStream(path), sink);
  };
  void (async () => {
    const manifest = [{ Config: `${hex(image.id)}.json`, RepoTags: tags, Layers: image.layers.map((l) => `${hex(l.digest)}/layer.tar`) }];
    await entry(`${hex(image.id)}.json`, store.blobPath(image.id));
    for (const l of image.layers) await entry(`${hex(l.digest)}/layer.tar`, store.blobPath(l.digest));
    const m = Buffer.from(JSON.stringify(manifest));
    pack.entry({ name: 'manifest.json', size: m.length, mode: 0o644 }, m);
    pack.finalize();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}
