// Docker-archive tars for the reference runtime (containerd), built from the
// same busybox-static layer as cri-mesos's test image:
//
//   <out>/busybox.tar  cri-mesos.test/busybox:latest   (what the benchmark's containers run)
//   <out>/pause.tar    cri-mesos.test/pause:bench      (the sandbox image; Cmd ["sleep","infinity"])
//
// Usage: npx tsx hack/bench/images.ts <outdir>
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BUSYBOX_CONFIG, TEST_TAGS, busyboxLayer, runAsScript, writeDockerArchive } from '../build-test-images.js';

export const PAUSE_IMAGE = 'cri-mesos.test/pause:bench';
export const BENCH_IMAGE = TEST_TAGS.oci;

export async function buildReferenceImages(outDir: string): Promise<{ busybox: string; pause: string }> {
  outDir = resolve(outDir);
  await mkdir(outDir, { recursive: true });
  const layer = await busyboxLayer();
  const busybox = join(outDir, 'busybox.tar');
  const pause = join(outDir, 'pause.tar');
  await writeDockerArchive(busybox, [{ tags: [BENCH_IMAGE], layers: [layer], config: BUSYBOX_CONFIG }]);
  await writeDockerArchive(pause, [
    { tags: [PAUSE_IMAGE], layers: [layer], config: { ...BUSYBOX_CONFIG, Cmd: ['sleep', 'infinity'], Labels: { 'org.cri-mesos.test': 'pause' } } },
  ]);
  return { busybox, pause };
}

runAsScript(import.meta.url, 'npx tsx hack/bench/images.ts', buildReferenceImages);
