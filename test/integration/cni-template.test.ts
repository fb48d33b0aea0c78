// cni_conf_template (containerd's conf_template): the node boots with an empty CNI conf dir and
// a template; the kubelet's UpdateRuntimeConfig gives the pod CIDR(s) and the daemon renders
// the template into the conf dir, after which the network is ready and pods get IPs from that
// CIDR. The daemon runs in a network namespace this test made (TestDaemon option `cni`), so
// the bridge and the addresses live and die there.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { status as grpcStatus } from '@grpc/grpc-js';
import { cniTemplateConfFile } from '../../src/paths.js';
import { podConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

/** The simplest template: one range, {{.PodCIDR}}. */
const simpleTemplate = (ipamDir: string) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'cri-mesos-template',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: true,
        ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '{{.PodCIDR}}' }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
    ],
  });

/** containerd's documented dual-stack form (docs/cri/config.md), as node images ship it. */
const rangesTemplate = (ipamDir: string) => `{
  "cniVersion": "1.0.0",
  "name": "cri-mesos-template",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
    "ipam": {
      "type": "host-local", "dataDir": ${JSON.stringify(ipamDir)},
      "ranges": [{{range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}],
      "routes": [
        {{- range $i, $route := .Routes}}{{if $i}}, {{end}}
        {"dst": "{{$route}}"}
        {{- end}}
      ]
    }
  },
  {"type": "loopback"}]
}
`;

const d = useDaemon('CNI conf template tests', { cni: true, cniConflist: false, cniTemplate: simpleTemplate });
if (d) {
  const written = () => cniTemplateConfFile(d.cniConfDir);
  const confFiles = () => (existsSync(d.cniConfDir) ? readdirSync(d.cniConfDir) : []);
  const networkReady = async () => {
    const s = await d.client.call('Status', {});
    return s.status.conditions.find((c: { type: string }) => c.type === 'NetworkReady') as { status: boolean; reason: string; message: string };
  };
  const updateCidr = (pod_cidr: string) => d.client.call('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr } } });
  const rejects = async (t: ExecutionContext, p: Promise<unknown>, code: number, field: RegExp) => {
    const err = (await t.throwsAsync(p)) as unknown as { code: number; details: string } | undefined;
    t.is(err?.code, code, err?.details);
    t.regex(err?.details ?? '', field);
  };
  const runPod = async (name: string) => (await d.client.call('RunPodSandbox', { config: podConfig(name) })).pod_sandbox_id as string;
  const removePod = (pod: string) => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }, 30_000);
  /** Back to an empty conf dir (no network) and the simple template. */
  const reset = async () => {
    rmSync(written(), { force: true });
    writeFileSync(d.cniTemplateFile, simpleTemplate(d.ipamDir));
    await waitFor('NetworkReady false', async () => !(await networkReady()).status || undefined);
  };

  test.serial('with no config in the conf dir NetworkReady is false; a bad pod_cidr is INVALID_ARGUMENT and writes nothing', async (t) => {
    t.deepEqual(confFiles(), []);
    const c = await networkReady();
    t.false(c.status);
    t.is(c.reason, 'NoCNIConfig');
    for (const bad of ['ten', '10.0.0.0/33', '300.1.2.0/24', '10.0.0.0', '10.0.0.0/24,nope', 'fd00::/129', '10.0.0.0/24,']) {
      await rejects(t, updateCidr(bad), grpcStatus.INVALID_ARGUMENT, /runtime_config\.network_config\.pod_cidr/);
    }
    t.deepEqual(confFiles(), []);
    t.false((await networkReady()).status);
  });

  test.serial('a template that cannot be rendered is FAILED_PRECONDITION naming it, and nothing is written', async (t) => {
    t.teardown(reset);
    writeFileSync(d.cniTemplateFile, '{"name": "{{.PodCIDR | printf "%s"}}"}');
    await rejects(t, updateCidr('10.99.0.0/24'), grpcStatus.FAILED_PRECONDITION, /cni_conf_template .*template\.conflist: cannot render it: unsupported action/);
    writeFileSync(d.cniTemplateFile, '{"name": "{{.NodeName}}"}');
    await rejects(t, updateCidr('10.99.0.0/24'), grpcStatus.FAILED_PRECONDITION, /unknown field \.NodeName/);
    writeFileSync(d.cniTemplateFile, '{"name": {{.PodCIDR}}}');
    await rejects(t, updateCidr('10.99.0.0/24'), grpcStatus.FAILED_PRECONDITION, /rendered for pod CIDR 10\.99\.0\.0\/24 it is not JSON/);
    t.deepEqual(confFiles(), []);
  });

  test.serial('UpdateRuntimeConfig writes the conflist from {{.PodCIDR}}; NetworkReady turns true; a pod gets an IP in the CIDR; a later CIDR does not rewrite it', async (t) => {
    t.teardown(reset);
    const pods: string[] = [];
    t.teardown(async () => {
      for (const p of pods) await removePod(p).catch(() => undefined);
    });
    await updateCidr('10.99.0.0/24');
    t.deepEqual(confFiles(), ['10-cri-mesos.conflist']);
    const list = JSON.parse(readFileSync(written(), 'utf8'));
    t.deepEqual(list.plugins[0].ipam.ranges, [[{ subnet: '10.99.0.0/24' }]]);
    await waitFor('NetworkReady true', async () => (await networkReady()).status || undefined);
    const verbose = await d.client.call('Status', { verbose: true });
    t.is(verbose.info.podCidr, '10.99.0.0/24');
    t.is(JSON.parse(verbose.info.cniconfig).file, written());
    pods.push(await runPod('tmpl-a'));
    const s = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pods[0] });
    t.regex(s.status.network.ip, /^10\.99\.0\.\d+$/);
    t.not(s.status.network.ip, '10.99.0.1'); // the bridge's (gateway) address
    // As containerd: a valid config is loaded, so the template is not used again.
    const before = readFileSync(written(), 'utf8');
    await updateCidr('10.98.0.0/24');
    t.is(readFileSync(written(), 'utf8'), before);
    t.is((await d.client.call('Status', { verbose: true })).info.podCidr, '10.98.0.0/24');
  });

  test.serial("containerd's dual-stack template form: ranges and routes for each CIDR; the pod gets an IPv4 and an IPv6 address", async (t) => {
    t.teardown(reset);
    let pod: string | undefined;
    t.teardown(() => (pod ? removePod(pod).catch(() => undefined) : undefined));
    writeFileSync(d.cniTemplateFile, rangesTemplate(d.ipamDir));
    await updateCidr('10.99.0.0/24, fd00:99::/64');
    const ipam = JSON.parse(readFileSync(written(), 'utf8')).plugins[0].ipam;
    t.deepEqual(ipam.ranges, [[{ subnet: '10.99.0.0/24' }], [{ subnet: 'fd00:99::/64' }]]);
    t.deepEqual(ipam.routes, [{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
    await waitFor('NetworkReady true', async () => (await networkReady()).status || undefined);
    pod = await runPod('tmpl-dual');
    const net = (await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod })).status.network;
    t.regex(net.ip, /^10\.99\.0\.\d+$/);
    t.is(net.additional_ips.length, 1);
    t.regex(net.additional_ips[0].ip, /^fd00:99::[0-9a-f]+$/);
  });
}
