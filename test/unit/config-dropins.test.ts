// Config drop-ins (config.d/*.toml over the main file, in lexical order, as CRI-O's) and the
// provenance `cri-mesos config` prints.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { configDirFor, defaultConfig, loadConfig, loadConfigWithSources, parseConfigToml, renderConfig } from '../../src/config.js';
import { projectRoot } from '../../src/util/paths.js';
import { tempDir } from '../helpers/suite.js';

/** main.toml and config.d/ with the given drop-ins in a temp dir; the main file's path. */
async function tree(t: Parameters<typeof tempDir>[0], main: string, dropIns: Record<string, string>): Promise<string> {
  const dir = await tempDir(t, 'cm-config-');
  writeFileSync(join(dir, 'main.toml'), main);
  mkdirSync(join(dir, 'config.d'));
  for (const [name, text] of Object.entries(dropIns)) writeFileSync(join(dir, 'config.d', name), text);
  return join(dir, 'main.toml');
}

test('precedence: default < main file < 10-a.toml < 20-b.toml < flag, each value with its source', async (t) => {
  const main = await tree(t, 'log_level = "debug"\ncgroup_root = "main"\nshm_size = 1\nlaunch_timeout_seconds = 5\n', {
    '10-a.toml': 'cgroup_root = "a"\nshm_size = 2\ncontainerizers = ["mesos", "docker"]\n',
    '20-b.toml': 'cgroup_root = "b"\nshm_size = 3\n',
    // Not a drop-in: only *.toml files count.
    '30-c.toml.disabled': 'cgroup_root = "c"\n',
    'README': 'not toml at all',
  });
  const dropIns = join(main, '..', 'config.d');
  const { config, sources, files } = loadConfigWithSources(main, { shmSize: '4' });
  t.deepEqual(files, [main, join(dropIns, '10-a.toml'), join(dropIns, '20-b.toml')]);
  t.is(config.workDir, defaultConfig().workDir);
  t.is(sources.work_dir, 'default');
  t.is(config.logLevel, 'debug');
  t.is(sources.log_level, main);
  t.is(config.launchTimeoutSeconds, 5);
  t.deepEqual(config.containerizers, ['mesos', 'docker']);
  t.is(sources.containerizers, join(dropIns, '10-a.toml'));
  t.is(config.cgroupRoot, 'b');
  t.is(sources.cgroup_root, join(dropIns, '20-b.toml'));
  t.is(config.shmSize, 4);
  t.is(sources.shm_size, 'flag --shm-size');
});

test('drop-ins apply in lexical (byte) order: 10 before 9, upper case before lower', async (t) => {
  const main = await tree(t, '', { '9-x.toml': 'cgroup_root = "nine"\n', '10-x.toml': 'cgroup_root = "ten"\n', 'A.toml': 'log_level = "warn"\n', 'a.toml': 'log_level = "error"\n' });
  const { config, files } = loadConfigWithSources(main, {});
  t.deepEqual(files.map((f) => f.split('/').pop()), ['main.toml', '10-x.toml', '9-x.toml', 'A.toml', 'a.toml']);
  t.is(config.cgroupRoot, 'nine');
  t.is(config.logLevel, 'error');
});

test('an unknown key or a wrong type in a drop-in is an error naming the file and the key', async (t) => {
  const main = await tree(t, 'cgroup_root = "main"\n', { '10-ok.toml': 'log_level = "debug"\n', '20-bad.toml': 'log_level = "debug"\nnope = 1\n' });
  const bad = join(main, '..', 'config.d', '20-bad.toml');
  const err = t.throws(() => loadConfig(main, {}));
  t.is(err?.message, `${bad}: config: unknown key "nope"`);

  const typed = await tree(t, '', { '10-typed.toml': 'shm_size = "lots"\n' });
  t.throws(() => loadConfig(typed, {}), { message: `${join(typed, '..', 'config.d', '10-typed.toml')}: config key "shm_size": expected a non-negative number` });
  const table = await tree(t, '', { '10-reg.toml': '[registry]\nmirror = {}\n' });
  t.throws(() => loadConfig(table, {}), { message: /10-reg\.toml: config: unknown key "registry\.mirror"/ });
  const syntax = await tree(t, '', { '10-syntax.toml': 'log_level = \n' });
  t.throws(() => loadConfig(syntax, {}), { message: /^\S+10-syntax\.toml: / });
});

test('the merged result is validated once: a pair split over two files is fine; a bad value names who set it', async (t) => {
  const split = await tree(t, 'stream_tls_cert = "/c.pem"\n', { '10-key.toml': 'stream_tls_key = "/k.pem"\n' });
  t.is(loadConfig(split, {}).streamTlsKey, '/k.pem');
  const rel = await tree(t, '', { '50-rel.toml': 'work_dir = "relative"\n' });
  t.throws(() => loadConfig(rel, {}), { message: `work_dir: must be an absolute path (set by ${join(rel, '..', 'config.d', '50-rel.toml')})` });
  t.throws(() => loadConfig(rel, { workDir: 'also-relative' }), { message: 'work_dir: must be an absolute path (set by flag --work-dir)' });
  // The file alone still validates as before.
  t.throws(() => parseConfigToml('work_dir = "relative"'), { message: /work_dir: must be an absolute path/ });
});

test('the drop-in dir: config.d next to the main file, --config-dir instead, "" for none; an explicit missing one is an error', async (t) => {
  t.is(configDirFor(undefined, undefined), '/etc/cri-mesos/config.d');
  t.is(configDirFor('/srv/cm/main.toml', undefined), '/srv/cm/config.d');
  const main = await tree(t, '', { '10-a.toml': 'cgroup_root = "a"\n' });
  const other = await tempDir(t, 'cm-config-dir-');
  writeFileSync(join(other, '10-o.toml'), 'cgroup_root = "other"\n');
  t.is(loadConfig(main, {}).cgroupRoot, 'a');
  t.is(loadConfig(main, {}, other).cgroupRoot, 'other');
  t.is(loadConfig(main, {}, '').cgroupRoot, 'cri-mesos');
  t.throws(() => loadConfig(main, {}, join(other, 'missing')), { message: /config dir \S+missing does not exist/ });
  // No config.d next to the main file: defaults and the file only.
  t.is(loadConfig('/dev/null', {}).cgroupRoot, 'cri-mesos');
});

test('registry mirrors merge per host over the files, each host with its own source', async (t) => {
  const main = await tree(t, '[registry.mirrors]\n"docker.io" = ["http://127.0.0.1:5000"]\n', {
    '10-quay.toml': '[registry]\ninsecure = ["myreg:5000"]\n[registry.mirrors]\n"quay.io" = ["https://m.example"]\n',
  });
  const quay = join(main, '..', 'config.d', '10-quay.toml');
  const { config, sources } = loadConfigWithSources(main, {});
  t.deepEqual(config.registries.mirrors, { 'docker.io': ['http://127.0.0.1:5000'], 'quay.io': ['https://m.example'] });
  t.is(sources['registry.mirrors."docker.io"'], main);
  t.is(sources['registry.mirrors."quay.io"'], quay);
  t.is(sources['registry.insecure'], quay);
  t.is(sources['registry.max_concurrent_downloads'], 'default');
});

test('renderConfig: TOML that loads back to the same config, every line naming its source', async (t) => {
  const main = await tree(t, 'log_level = "debug"\n[registry.mirrors]\n"docker.io" = ["http://127.0.0.1:5000"]\n', { '10-a.toml': 'cni_bin_dirs = ["/x", "/y"]\nseccomp_default = true\n' });
  const loaded = loadConfigWithSources(main, { cgroupRoot: 'flagged' });
  const text = renderConfig(loaded);
  t.deepEqual(parseConfigToml(text), loaded.config);
  const line = (key: string) => text.split('\n').find((l) => l.startsWith(`${key} = `));
  t.regex(line('log_level')!, new RegExp(`^log_level = "debug" +# ${main}$`));
  t.regex(line('cni_bin_dirs')!, /^cni_bin_dirs = \["\/x", "\/y"\] +# \S+\/config\.d\/10-a\.toml$/);
  t.regex(line('cgroup_root')!, /^cgroup_root = "flagged" +# flag --cgroup-root$/);
  t.regex(line('socket')!, /^socket = "\/run\/cri-mesos\/cri-mesos\.sock" +# default$/);
  t.regex(line('"docker.io"')!, new RegExp(`^"docker.io" = \\["http://127.0.0.1:5000"\\] +# ${main}$`));
  // Every key of the config is there.
  const doc = parseToml(text) as Record<string, unknown>;
  t.is(Object.keys(doc).length, Object.keys(loaded.sources).filter((k) => !k.startsWith('registry.')).length + 1);
});

test('cri-mesos config prints the merged result with each value\'s source; --json for machines', async (t) => {
  const main = await tree(t, 'log_level = "debug"\ncgroup_root = "main"\n', { '10-a.toml': 'cgroup_root = "a"\n', '20-b.toml': 'shm_size = 1024\n' });
  const dropIns = join(main, '..', 'config.d');
  const cli = [process.execPath, '--import', 'tsx', join(projectRoot(), 'src', 'cli.ts'), 'config', '--config', main];
  const out = execFileSync(cli[0]!, [...cli.slice(1), '--launch-timeout-seconds', '7'], { encoding: 'utf8', cwd: projectRoot() });
  const lines = out.split('\n');
  t.is(lines[0], `# files: ${main}, ${join(dropIns, '10-a.toml')}, ${join(dropIns, '20-b.toml')}`);
  t.true(lines.some((l) => new RegExp(`^log_level = "debug" +# ${main}$`).test(l)), out);
  t.true(lines.some((l) => new RegExp(`^cgroup_root = "a" +# ${join(dropIns, '10-a.toml')}$`).test(l)), out);
  t.true(lines.some((l) => new RegExp(`^shm_size = 1024 +# ${join(dropIns, '20-b.toml')}$`).test(l)), out);
  t.true(lines.some((l) => /^launch_timeout_seconds = 7 +# flag --launch-timeout-seconds$/.test(l)), out);
  t.true(lines.some((l) => /^work_dir = "\/var\/lib\/cri-mesos" +# default$/.test(l)), out);

  const json = JSON.parse(execFileSync(cli[0]!, [...cli.slice(1), '--json'], { encoding: 'utf8', cwd: projectRoot() })) as { config: { cgroupRoot: string }; sources: Record<string, string>; files: string[] };
  t.is(json.config.cgroupRoot, 'a');
  t.is(json.sources.cgroup_root, join(dropIns, '10-a.toml'));
  t.is(json.files.length, 3);

  writeFileSync(join(dropIns, '30-bad.toml'), 'bogus_key = true\n');
  const bad = spawnSync(cli[0]!, cli.slice(1), { encoding: 'utf8', cwd: projectRoot() });
  t.not(bad.status, 0);
  t.true(bad.stderr.includes(`${join(dropIns, '30-bad.toml')}: config: unknown key "bogus_key"`), bad.stderr);
});
