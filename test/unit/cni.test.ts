// The CNI exec protocol module (src/network/cni.ts) against small fake plugins (shell scripts
// that record their environment and stdin): version negotiation, chaining with prevResult,
// DEL with the cached result, capabilities, error objects as typed errors, config loading.
import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code } from '../../src/errors.js';
import { CniError, CniExec, CNI_NOT_FOUND, parseNetworkConfig, resultIps, type Invocation } from '../../src/network/cni.js';
import { loadNetwork } from '../../src/network/conf-dir.js';
import { renderConfTemplate, templateValues, TemplateError } from '../../src/network/conf-template.js';

const dir = mkdtempSync(join(tmpdir(), 'cni-unit-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** A fake plugin: logs "<command> <CNI_ARGS>" and its stdin to files, answers per command. */
function plugin(name: string, opts: { versions?: string[]; add?: string; fail?: string } = {}): void {
  const log = join(dir, `${name}.log`);
  const versions = JSON.stringify({ cniVersion: '1.0.0', supportedVersions: opts.versions ?? ['0.4.0', '1.0.0'] });
  writeFileSync(
    join(dir, name),
    `#!/bin/sh
in=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_ARGS" >> ${log}
printf '%s\\n' "$in" >> ${log}.stdin
case "$CNI_COMMAND" in
VERSION) echo '${versions}' ;;
ADD) ${opts.fail ? `echo '${opts.fail}'; exit 1` : `echo '${opts.add ?? '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.1.0.5/24","interface":0}]}'}'`} ;;
esac
exit 0
`,
  );
  chmodSync(join(dir, name), 0o755);
}

const inv: Invocation = {
  containerId: 'pod1',
  netns: '/run/x/netns',
  ifName: 'eth0',
  args: [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAME', 'web'],
  ],
  capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp', hostIP: '' }], dns: { servers: ['1.1.1.1'] } },
};

const stdinLines = (name: string) =>
  readFileSync(join(dir, `${name}.log.stdin`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test.serial('ADD chains the list with prevResult, CNI_ARGS and only the declared capabilities; DEL runs in reverse with the cached result', async (t) => {
  plugin('fbridge');
  plugin('fportmap', { add: '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.1.0.5/24","interface":0}],"extra":1}' });
  const list = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'fbridge' }, { type: 'fportmap', capabilities: { portMappings: true } }] }), true);
  const exec = new CniExec(['/nonexistent', dir]);
  await exec.validate(list);
  const result = await exec.add(list, inv);
  t.is(result.extra, 1);
  t.deepEqual(resultIps(result), ['10.1.0.5']);
  const [bridgeIn] = stdinLines('fbridge').slice(-1);
  t.is(bridgeIn!.name, 'n');
  t.is(bridgeIn!.runtimeConfig, undefined, 'no capability declared: no runtimeConfig');
  const portmapIn = stdinLines('fportmap').slice(-1)[0]!;
  t.deepEqual(portmapIn.runtimeConfig, { portMappings: inv.capabilityArgs.portMappings });
  t.deepEqual((portmapIn.prevResult as { ips: unknown[] }).ips, [{ address: '10.1.0.5/24', interface: 0 }]);
  t.regex(readFileSync(join(dir, 'fbridge.log'), 'utf8'), /ADD pod1 eth0 IgnoreUnknown=1;K8S_POD_NAME=web/);

  await exec.del(list, inv, result);
  const order = [readFileSync(join(dir, 'fbridge.log'), 'utf8'), readFileSync(join(dir, 'fportmap.log'), 'utf8')];
  t.true(order.every((l) => l.includes('DEL pod1')));
  t.deepEqual(stdinLines('fbridge').slice(-1)[0]!.prevResult, result, 'DEL gets the cached ADD result');
  await exec.check(list, inv, result);
  t.regex(readFileSync(join(dir, 'fbridge.log'), 'utf8'), /CHECK pod1/);
});

test.serial('version negotiation: a plugin that does not support the list version is refused; VERSION is asked once per binary', async (t) => {
  plugin('fold', { versions: ['0.3.0', '0.3.1'] });
  const exec = new CniExec([dir]);
  const list = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'fold' }), false);
  const err = await t.throwsAsync(exec.validate(list), { instanceOf: CniError });
  t.is(err!.cniCode, 1);
  t.is(err!.status, Code.FAILED_PRECONDITION);
  t.regex(err!.message, /does not support cniVersion 1\.0\.0.*0\.3\.0, 0\.3\.1/);
  await t.throwsAsync(exec.validate(list));
  t.is(readFileSync(join(dir, 'fold.log'), 'utf8').match(/VERSION/g)?.length, 1);
  // CHECK is not part of lists older than 0.4.0: nothing runs.
  const old = parseNetworkConfig(JSON.stringify({ cniVersion: '0.3.1', name: 'n', type: 'fold' }), false);
  await exec.check(old, inv, { cniVersion: '0.3.1' });
  t.notRegex(readFileSync(join(dir, 'fold.log'), 'utf8'), /CHECK/);
});

test.serial('an error object becomes a typed CniError; a missing plugin is FAILED_PRECONDITION; try-again-later is UNAVAILABLE', async (t) => {
  plugin('fbad', { fail: '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"lock held"}' });
  const exec = new CniExec([dir]);
  const list = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'fbad' }] }), true);
  const err = await t.throwsAsync(exec.add(list, inv), { instanceOf: CniError });
  t.is(err!.cniCode, 11);
  t.is(err!.status, Code.UNAVAILABLE);
  t.is(err!.msg, 'ADD: busy');
  t.is(err!.details, 'lock held');
  const missing = t.throws(() => exec.find('nope'), { instanceOf: CniError });
  t.is(missing!.cniCode, CNI_NOT_FOUND);
  t.is(missing!.status, Code.FAILED_PRECONDITION);
});

test('config parsing names the problem', (t) => {
  t.throws(() => parseNetworkConfig('{', true), { message: /invalid JSON/ });
  t.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","plugins":[]}', true), { message: /no "name"/ });
  t.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"x","plugins":[]}', true), { message: /"plugins" is missing or empty/ });
  t.throws(() => parseNetworkConfig('{"cniVersion":"9.9.9","name":"x","type":"a"}', false), { message: /cniVersion "9\.9\.9"/ });
  t.deepEqual(parseNetworkConfig('{"cniVersion":"0.4.0","name":"x","type":"a","k":1}', false).plugins, [{ cniVersion: '0.4.0', name: 'x', type: 'a', k: 1 }]);
});

test('results: IPv4 first, host-side interfaces left out, 0.2.0 results read', (t) => {
  t.deepEqual(
    resultIps({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: '/ns' }],
      ips: [
        { address: 'fd00::5/64', interface: 1 },
        { address: '10.0.0.5/24', interface: 1 },
        { address: '10.0.0.1/24', interface: 0 },
      ],
    }),
    ['10.0.0.5', 'fd00::5'],
  );
  t.deepEqual(resultIps({ cniVersion: '0.2.0', ip4: { ip: '10.2.0.3/16' } }), ['10.2.0.3']);
});

test.serial('the conf dir: the first valid file in lexical order wins; none gives a reason', async (t) => {
  plugin('fgood');
  const conf = mkdtempSync(join(dir, 'conf-'));
  const exec = new CniExec([dir]);
  t.is((await loadNetwork(join(conf, 'missing'), exec)).reason, 'NoCNIConfig');
  t.is((await loadNetwork(conf, exec)).reason, 'NoCNIConfig');
  writeFileSync(join(conf, '05-broken.conflist'), '{');
  writeFileSync(join(conf, '10-good.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'good', type: 'fgood' }));
  writeFileSync(join(conf, '20-later.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'later', plugins: [{ type: 'fgood' }] }));
  const s = await loadNetwork(conf, exec);
  t.true(s.ready);
  t.is(s.list?.name, 'good');
  rmSync(join(conf, '10-good.conf'));
  rmSync(join(conf, '20-later.conflist'));
  const bad = await loadNetwork(conf, exec);
  t.false(bad.ready);
  t.is(bad.reason, 'InvalidCNIConfig');
  t.regex(bad.message, /05-broken\.conflist: invalid JSON/);
});

test("conf template: {{.PodCIDR}}, containerd's documented range/if form with trim markers, routes per family", (t) => {
  const dual = templateValues(['10.244.1.0/24', 'fd00:10:244:1::/64']);
  t.deepEqual(dual, { PodCIDR: '10.244.1.0/24', PodCIDRRanges: ['10.244.1.0/24', 'fd00:10:244:1::/64'], Routes: ['0.0.0.0/0', '::/0'] });
  t.deepEqual(templateValues(['fd00::/64']).Routes, ['::/0']);
  t.is(renderConfTemplate('{"subnet": "{{.PodCIDR}}", "x": "{{ .PodCIDR }}"}', dual), '{"subnet": "10.244.1.0/24", "x": "10.244.1.0/24"}');
  const ranges = '[{{range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}]';
  t.is(renderConfTemplate(ranges, dual), '[[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]');
  t.is(renderConfTemplate(ranges, templateValues(['10.244.1.0/24'])), '[[{"subnet": "10.244.1.0/24"}]]');
  const routes = '[\n  {{- range $i, $route := .Routes}}{{if $i}}, {{end}}\n  {"dst": "{{$route}}"}\n  {{- end}}\n]';
  t.is(renderConfTemplate(routes, dual), '[\n  {"dst": "0.0.0.0/0"}, \n  {"dst": "::/0"}\n]');
  // {{range .X}} with {{.}}, a single variable, else, comments, right trim.
  t.is(renderConfTemplate('{{range .Routes}}<{{.}}>{{end}}', dual), '<0.0.0.0/0><::/0>');
  t.is(renderConfTemplate('{{range $r := .Routes}}{{$r}} {{end}}', dual), '0.0.0.0/0 ::/0 ');
  t.is(renderConfTemplate('{{range $i, $r := .Routes}}{{if $i}}+{{else}}={{end}}{{end}}', dual), '=+');
  t.is(renderConfTemplate('a {{/* note */}}b {{- /* x */ -}} c', dual), 'a bc');
});

test('conf template: anything else is refused by name', (t) => {
  const v = templateValues(['10.0.0.0/24']);
  t.throws(() => renderConfTemplate('{{.PodCIDR | printf "%s"}}', v), { instanceOf: TemplateError, message: /unsupported action \{\{\.PodCIDR \| printf "%s"\}\}/ });
  t.throws(() => renderConfTemplate('{{.NodeName}}', v), { message: /unknown field \.NodeName/ });
  t.throws(() => renderConfTemplate('{{$x}}', v), { message: /undefined variable \$x/ });
  t.throws(() => renderConfTemplate('{{range .Routes}}x', v), { message: /has no \{\{end\}\}/ });
  t.throws(() => renderConfTemplate('x{{end}}', v), { message: /without an opening/ });
  t.throws(() => renderConfTemplate('{{range .PodCIDR}}{{end}}', v), { message: /not a list/ });
  t.throws(() => renderConfTemplate('{"a": "{{.PodCIDR"}', v), { message: /unclosed action/ });
});
