// The CNI plugins alone: the floor under any runtime's RunPodSandbox on the POD network.
// Run by the cni workload inside a runtime's network namespace (ip netns exec), with no pods
// left: N × (ADD chain, DEL chain) of the benchmark's conflist through the same CniExec the
// daemon uses, each into a namespace the caller made. Also the loopback network containerd
// runs on its own (go-cni's WithLoNetwork). Prints JSON: { add: ms[], del: ms[], lo: ms[] }.
//
//   tsx hack/bench/cni-floor.ts <ipam dir> <netns path>...
import { performance } from 'node:perf_hooks';
import { CniExec, parseNetworkConfig, type Invocation } from '../../src/network/cni.js';
import { testConflist } from '../../test/helpers/daemon.js';

const [ipamDir, ...namespaces] = process.argv.slice(2);
if (!ipamDir || namespaces.length === 0) {
  process.stderr.write('usage: cni-floor.ts <ipam dir> <netns path>...\n');
  process.exit(2);
}
const exec = new CniExec(['/usr/lib/cni']);
const list = parseNetworkConfig(testConflist(ipamDir), true);
const lo = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] }), true);
const out = { add: [] as number[], del: [] as number[], lo: [] as number[] };
const time = async (into: number[], f: () => Promise<unknown>) => {
  const t0 = performance.now();
  const r = await f();
  into.push(performance.now() - t0);
  return r;
};
await exec.validate(list); // VERSION once per plugin, as a daemon does before its first pod
for (const [i, netns] of namespaces.entries()) {
  const inv: Invocation = { containerId: `cni-floor-${i}`, netns, ifName: 'eth0', args: [['IgnoreUnknown', '1']], capabilityArgs: {} };
  await time(out.lo, () => exec.add(lo, { ...inv, ifName: 'lo' }));
  const result = (await time(out.add, () => exec.add(list, inv))) as Awaited<ReturnType<CniExec['add']>>;
  await time(out.del, () => exec.del(list, inv, result));
}
process.stdout.write(JSON.stringify(out) + '\n');
