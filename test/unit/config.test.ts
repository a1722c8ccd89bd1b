import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, ENV_VARS, loadConfig, parseListen, readConfigFile, resolveConfig } from '../../src/config/load.ts';
import { envWithoutBerth, runCli } from '../helpers/berth.ts';

function throwsConfigError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

async function rejectsConfigError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const pat of patterns) assert.match(err.message, pat);
    return true;
  });
}

describe('resolveConfig', () => {
  it('gives the documented defaults', () => {
    const c = resolveConfig({}, {}, {});
    assert.deepEqual(c, {
      listen: '0.0.0.0:5000',
      dataDir: path.resolve('./data'),
      log: { level: 'info' },
      storage: { driver: 'filesystem', fsync: true },
      metadata: { driver: 'sqlite' },
      auth: { enabled: true, tokenTtlSeconds: 12 * 3600 },
      ecr: { accountId: '000000000000', region: 'us-east-1', extraRegions: [] },
      gc: { intervalSeconds: 3600, graceSeconds: 3600 },
      lifecycle: { intervalSeconds: 3600 },
      scan: { workers: 1, intervalSeconds: 60, attachSbom: false },
      tls: {},
      encryption: {},
      metrics: { enabled: true },
      pullThrough: { tagRevalidateSeconds: 86400, completeImagesAfterSeconds: 30, allowPush: false, upstreamTimeoutSeconds: 30, mirrors: {} },
      events: { retainDays: 30 },
      audit: { enabled: true, retainDays: 90 },
      replication: { destinations: [], pollMilliseconds: 1000, concurrency: 4, timeoutSeconds: 60, retryBaseSeconds: 5, retryMaxSeconds: 600, giveUpAfterSeconds: 86400, maxDeferSeconds: 5 },
      webhooks: { pollMilliseconds: 1000, timeoutSeconds: 10, concurrency: 8, retryBaseSeconds: 10, retryMaxSeconds: 3600, giveUpAfterSeconds: 90000 },
      console: { enabled: true, sessionTtlSeconds: 43200 },
      jobs: { leaseSeconds: 30 },
      // With auth on (the default), repositories are created explicitly, as in ECR.
      registry: { createRepositoryOnPush: false, maxManifestBytes: 4 * 1024 * 1024, uploadExpirySeconds: 24 * 3600 },
      shutdownGraceSeconds: 30,
      trustProxy: false,
    });
  });

  it('trustProxy: true, false, a list, or a comma-separated string (BERTH_TRUST_PROXY)', () => {
    assert.equal(resolveConfig({ trustProxy: true }, {}, {}).trustProxy, true);
    assert.deepEqual(resolveConfig({ trustProxy: ['10.0.0.0/8', '127.0.0.1'] }, {}, {}).trustProxy, ['10.0.0.0/8', '127.0.0.1']);
    assert.deepEqual(resolveConfig({}, { BERTH_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }, {}).trustProxy, ['10.0.0.0/8', '127.0.0.1']);
    assert.equal(resolveConfig({}, { BERTH_TRUST_PROXY: 'true' }, {}).trustProxy, true);
    assert.equal(resolveConfig({}, { BERTH_TRUST_PROXY: 'false' }, {}).trustProxy, false);
    assert.throws(() => resolveConfig({ trustProxy: [] }, {}, {}));
    assert.throws(() => resolveConfig({}, { BERTH_TRUST_PROXY: ' , ' }, {}));
  });

  it('creates repositories on push by default only when auth is off', () => {
    assert.equal(resolveConfig({ auth: { enabled: false } }, {}, {}).registry.createRepositoryOnPush, true);
    assert.equal(resolveConfig({ auth: { enabled: false }, registry: { createRepositoryOnPush: false } }, {}, {}).registry.createRepositoryOnPush, false);
    assert.equal(resolveConfig({}, { BERTH_CREATE_REPOSITORY_ON_PUSH: 'true' }, {}).registry.createRepositoryOnPush, true);
  });

  it('requires both root credentials or neither', () => {
    assert.throws(() => resolveConfig({}, { BERTH_ROOT_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE12' }, {}), ConfigError);
    const c = resolveConfig({}, { BERTH_ROOT_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE12', BERTH_ROOT_SECRET_ACCESS_KEY: 'secretsecretsecret' }, {});
    assert.equal(c.auth.rootAccessKeyId, 'AKIAEXAMPLEEXAMPLE12');
  });

  it('takes values from the file', () => {
    const c = resolveConfig({
      listen: '127.0.0.1:6000',
      dataDir: '/var/lib/berth',
      log: { level: 'debug' },
      storage: { driver: 'filesystem', root: '/srv/blobs', fsync: false },
      metadata: { driver: 'postgres', connectionString: 'postgres://db/berth', poolSize: 4 },
      registry: { createRepositoryOnPush: false, maxManifestBytes: 1024 * 1024, uploadExpirySeconds: 600 },
      shutdownGraceSeconds: 5,
    }, {}, {});
    assert.equal(c.listen, '127.0.0.1:6000');
    assert.equal(c.dataDir, '/var/lib/berth');
    assert.equal(c.log.level, 'debug');
    assert.deepEqual(c.storage, { driver: 'filesystem', root: '/srv/blobs', fsync: false });
    assert.deepEqual(c.metadata, { driver: 'postgres', connectionString: 'postgres://db/berth', poolSize: 4 });
    assert.deepEqual(c.registry, { createRepositoryOnPush: false, maxManifestBytes: 1024 * 1024, uploadExpirySeconds: 600 });
    assert.equal(c.shutdownGraceSeconds, 5);
  });

  it('fills defaults inside partially given sections', () => {
    const c = resolveConfig({ registry: { uploadExpirySeconds: 120 }, metadata: { driver: 'postgres', connectionString: 'postgres://x/y' } }, {}, {});
    assert.deepEqual(c.registry, { createRepositoryOnPush: false, maxManifestBytes: 4 * 1024 * 1024, uploadExpirySeconds: 120 });
    assert.equal(c.metadata.driver === 'postgres' && c.metadata.poolSize, 10);
  });

  it('resolves a relative dataDir against the working directory', () => {
    assert.equal(resolveConfig({ dataDir: 'rel/dir' }, {}, {}).dataDir, path.join(process.cwd(), 'rel/dir'));
    assert.equal(resolveConfig({}, { BERTH_DATA_DIR: '../up' }, {}).dataDir, path.resolve(process.cwd(), '../up'));
    assert.equal(resolveConfig({}, {}, { dataDir: './x' }).dataDir, path.join(process.cwd(), 'x'));
  });

  it('lets the environment override the file', () => {
    const file = { listen: '1.2.3.4:80', log: { level: 'debug' }, registry: { maxManifestBytes: 2048, createRepositoryOnPush: true } };
    const c = resolveConfig(file, {
      BERTH_LISTEN: '127.0.0.1:9000',
      BERTH_LOG_LEVEL: 'warn',
      BERTH_MAX_MANIFEST_BYTES: '4096',
      BERTH_CREATE_REPOSITORY_ON_PUSH: 'false',
    }, {});
    assert.equal(c.listen, '127.0.0.1:9000');
    assert.equal(c.log.level, 'warn');
    assert.equal(c.registry.maxManifestBytes, 4096);
    assert.equal(c.registry.createRepositoryOnPush, false);
  });

  it('keeps file values the environment does not set, and ignores empty variables', () => {
    const c = resolveConfig({ listen: '1.2.3.4:80', log: { level: 'debug' } }, { BERTH_LISTEN: '', BERTH_UNRELATED: 'x' }, {});
    assert.equal(c.listen, '1.2.3.4:80');
    assert.equal(c.log.level, 'debug');
  });

  it('lets flags override the environment and the file', () => {
    const c = resolveConfig(
      { listen: '1.2.3.4:80', dataDir: '/from/file', log: { level: 'debug' } },
      { BERTH_LISTEN: '5.6.7.8:81', BERTH_DATA_DIR: '/from/env', BERTH_LOG_LEVEL: 'warn' },
      { listen: '127.0.0.1:0', dataDir: '/from/flag', logLevel: 'error' },
    );
    assert.equal(c.listen, '127.0.0.1:0');
    assert.equal(c.dataDir, '/from/flag');
    assert.equal(c.log.level, 'error');
  });

  it('switches the metadata driver from the environment', () => {
    const c = resolveConfig({}, { BERTH_METADATA_DRIVER: 'postgres', BERTH_POSTGRES_URL: 'postgres://h/db', BERTH_POSTGRES_POOL_SIZE: '3' }, {});
    assert.deepEqual(c.metadata, { driver: 'postgres', connectionString: 'postgres://h/db', poolSize: 3 });
  });

  it('sets one field of a storage or metadata section from the environment, keeping the default driver', () => {
    // With no storage/metadata section in the file, the default section's driver must still apply.
    const a = resolveConfig({}, { BERTH_STORAGE_FSYNC: 'false' }, {});
    assert.deepEqual(a.storage, { driver: 'filesystem', fsync: false });
    const b = resolveConfig({}, { BERTH_STORAGE_ROOT: '/srv/blobs' }, {});
    assert.deepEqual(b.storage, { driver: 'filesystem', root: '/srv/blobs', fsync: true });
    const c = resolveConfig({}, { BERTH_SQLITE_PATH: '/srv/berth.db' }, {});
    assert.deepEqual(c.metadata, { driver: 'sqlite', path: '/srv/berth.db' });
  });

  it('sets one field of a section the file already has from the environment', () => {
    const c = resolveConfig({ storage: { driver: 'filesystem', root: '/a' } }, { BERTH_STORAGE_FSYNC: 'off', BERTH_STORAGE_ROOT: '/b' }, {});
    assert.deepEqual(c.storage, { driver: 'filesystem', root: '/b', fsync: false });
  });

  it('takes storage.minFreeBytes as bytes, a size with a binary unit or a percentage, from the file or the environment', () => {
    const minFree = (file: Record<string, unknown>, env: Record<string, string> = {}) => {
      const storage = resolveConfig(file, env, {}).storage;
      assert.equal(storage.driver, 'filesystem');
      return storage.driver === 'filesystem' ? storage.minFreeBytes : undefined;
    };
    assert.equal(minFree({}), undefined, 'unset: the default rule applies (storage/space.ts)');
    assert.equal(minFree({ storage: { minFreeBytes: 0 } }), 0);
    assert.equal(minFree({ storage: { minFreeBytes: 2147483648 } }), 2147483648);
    assert.equal(minFree({ storage: { minFreeBytes: '512MiB' } }), '512MiB');
    assert.equal(minFree({}, { BERTH_STORAGE_MIN_FREE_BYTES: '16777216' }), '16777216');
    assert.equal(minFree({}, { BERTH_STORAGE_MIN_FREE_BYTES: '10%' }), '10%');
    assert.equal(minFree({ storage: { minFreeBytes: 5 } }, { BERTH_STORAGE_MIN_FREE_BYTES: '2.5 GiB' }), '2.5 GiB');
    for (const bad of ['lots', '-1', '1 GB', '101%', '%']) {
      throwsConfigError(() => resolveConfig({}, { BERTH_STORAGE_MIN_FREE_BYTES: bad }, {}), /storage\.minFreeBytes/);
    }
    throwsConfigError(() => resolveConfig({ storage: { minFreeBytes: -1 } }, {}, {}), /storage\.minFreeBytes/);
    throwsConfigError(() => resolveConfig({ storage: { minFreeBytes: 1.5 } }, {}, {}), /storage\.minFreeBytes/);
    // A filesystem-driver setting: S3 has no disk to keep free.
    throwsConfigError(() => resolveConfig({ storage: { driver: 's3', bucket: 'berth-blobs', minFreeBytes: 0 } }, {}, {}), /minFreeBytes/);
  });

  it('parses BERTH_* booleans', () => {
    for (const v of ['1', 'true', 'TRUE', 'yes', 'Yes', 'on', 'ON']) {
      assert.equal(resolveConfig({}, { BERTH_CREATE_REPOSITORY_ON_PUSH: v }, {}).registry.createRepositoryOnPush, true, v);
    }
    for (const v of ['0', 'false', 'False', 'no', 'NO', 'off']) {
      assert.equal(resolveConfig({}, { BERTH_CREATE_REPOSITORY_ON_PUSH: v }, {}).registry.createRepositoryOnPush, false, v);
    }
    for (const v of ['maybe', '2', 'truee', ' ']) {
      throwsConfigError(() => resolveConfig({}, { BERTH_CREATE_REPOSITORY_ON_PUSH: v }, {}), /BERTH_CREATE_REPOSITORY_ON_PUSH/, /true or false/);
    }
  });

  it('parses BERTH_* numbers', () => {
    assert.equal(resolveConfig({}, { BERTH_UPLOAD_EXPIRY_SECONDS: '3600' }, {}).registry.uploadExpirySeconds, 3600);
    assert.equal(resolveConfig({}, { BERTH_SHUTDOWN_GRACE_SECONDS: '2.5' }, {}).shutdownGraceSeconds, 2.5);
    assert.equal(resolveConfig({}, { BERTH_SHUTDOWN_GRACE_SECONDS: '0' }, {}).shutdownGraceSeconds, 0);
    for (const v of ['abc', ' ', 'Infinity', 'NaN', '12abc']) {
      throwsConfigError(() => resolveConfig({}, { BERTH_MAX_MANIFEST_BYTES: v }, {}), /BERTH_MAX_MANIFEST_BYTES/, /expected a number/);
    }
  });

  it('validates numbers from the environment against the schema, naming the field', () => {
    throwsConfigError(() => resolveConfig({}, { BERTH_MAX_MANIFEST_BYTES: '10' }, {}), /registry\.maxManifestBytes/);
    throwsConfigError(() => resolveConfig({}, { BERTH_UPLOAD_EXPIRY_SECONDS: '1.5' }, {}), /registry\.uploadExpirySeconds/);
  });

  it('rejects bad values with a ConfigError naming the field', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ listen: 'localhost' }, /listen/],
      [{ listen: 5000 }, /listen/],
      [{ dataDir: '' }, /dataDir/],
      [{ log: { level: 'loud' } }, /log\.level/],
      [{ storage: { driver: 'azure' } }, /storage\.driver/],
      [{ storage: { driver: 's3' } }, /storage\.bucket/],
      [{ tls: { cert: '/etc/berth/cert.pem' } }, /tls: set both tls\.cert and tls\.key/],
      [{ storage: { driver: 'filesystem', fsync: 'yes' } }, /storage\.fsync/],
      [{ metadata: { driver: 'postgres' } }, /metadata\.connectionString/],
      [{ metadata: { driver: 'postgres', connectionString: 'postgres://x', poolSize: 0 } }, /metadata\.poolSize/],
      [{ registry: { maxManifestBytes: 10 } }, /registry\.maxManifestBytes/],
      [{ registry: { uploadExpirySeconds: 1 } }, /registry\.uploadExpirySeconds/],
      [{ shutdownGraceSeconds: -1 }, /shutdownGraceSeconds/],
      [{ registry: { createRepositoryOnPush: 'yes' } }, /registry\.createRepositoryOnPush/],
    ];
    for (const [file, field] of cases) {
      throwsConfigError(() => resolveConfig(file, {}, {}, 'file test.yaml'), /invalid configuration \(file test\.yaml\)/, field);
    }
  });

  it('accepts listen addresses with ports up to 65535 and rejects larger ones', () => {
    for (const listen of ['0.0.0.0:0', '127.0.0.1:65535', '[::1]:8080', 'localhost:5000', ':5000']) {
      assert.equal(resolveConfig({ listen }, {}, {}).listen, listen);
    }
    // `berth config check` must catch these rather than let `serve` fail when it binds.
    for (const listen of ['0.0.0.0:65536', '0.0.0.0:99999']) {
      throwsConfigError(() => resolveConfig({ listen }, {}, {}), /listen/);
    }
  });

  it('rejects unknown keys, naming them', () => {
    throwsConfigError(() => resolveConfig({ lisen: '0.0.0.0:5000' }, {}, {}), /lisen/);
    throwsConfigError(() => resolveConfig({ storage: { driver: 'filesystem', rooot: '/x' } }, {}, {}), /storage/, /rooot/);
  });

  it('reports every invalid field at once', () => {
    throwsConfigError(() => resolveConfig({ listen: 'x', log: { level: 'loud' } }, {}, {}), /listen/, /log\.level/);
  });

  it('rejects a bad flag value', () => {
    throwsConfigError(() => resolveConfig({}, {}, { listen: 'nope' }), /listen/);
    throwsConfigError(() => resolveConfig({}, {}, { logLevel: 'chatty' }), /log\.level/);
  });

  it('does not modify the file object it is given', () => {
    const file = { log: { level: 'debug' }, registry: { maxManifestBytes: 2048 } };
    const copy = structuredClone(file);
    resolveConfig(file, { BERTH_LOG_LEVEL: 'warn', BERTH_MAX_MANIFEST_BYTES: '4096' }, { logLevel: 'error' });
    assert.deepEqual(file, copy);
  });

  it('documents only settings that exist in the schema', () => {
    // Each variable, set to a plausible value, must resolve without an "unrecognized key" error.
    const sample: Record<string, string> = { string: 'x', number: '100', boolean: 'true' };
    for (const [name, spec] of Object.entries(ENV_VARS)) {
      const env: Record<string, string> = { [name]: sample[spec.type] };
      if (name === 'BERTH_LISTEN') env[name] = '0.0.0.0:1';
      if (name === 'BERTH_LOG_LEVEL') env[name] = 'warn';
      if (name === 'BERTH_STORAGE_DRIVER') env[name] = 'filesystem';
      if (name === 'BERTH_METADATA_DRIVER') env[name] = 'sqlite';
      if (name === 'BERTH_MAX_MANIFEST_BYTES') env[name] = '4096';
      if (name === 'BERTH_SCAN_WORKERS') env[name] = '2';
      if (name === 'BERTH_REPLICATION_CONCURRENCY') env[name] = '8';
      if (name === 'BERTH_STORAGE_MIN_FREE_BYTES') env[name] = '1GiB';
      if (name === 'BERTH_PULL_THROUGH_MIRRORS') env[name] = 'docker.io=hub';
      if (name === 'BERTH_ROOT_ACCESS_KEY_ID' || name === 'BERTH_ROOT_SECRET_ACCESS_KEY') Object.assign(env, { BERTH_ROOT_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE12', BERTH_ROOT_SECRET_ACCESS_KEY: 'secretsecretsecret' });
      if (name === 'BERTH_ACCOUNT_ID') env[name] = '123456789012';
      if (name === 'BERTH_REGION') env[name] = 'eu-west-1';
      if (name.startsWith('BERTH_POSTGRES')) Object.assign(env, { BERTH_METADATA_DRIVER: 'postgres', BERTH_POSTGRES_URL: 'postgres://h/db' });
      if (name === 'BERTH_SQLITE_PATH') env.BERTH_METADATA_DRIVER = 'sqlite';
      if (name.startsWith('BERTH_STORAGE_')) env.BERTH_STORAGE_DRIVER ??= 'filesystem';
      if (name.startsWith('BERTH_S3_')) Object.assign(env, { BERTH_STORAGE_DRIVER: 's3', BERTH_S3_BUCKET: 'berth-blobs' }, name === 'BERTH_S3_ENDPOINT' ? { [name]: 'http://127.0.0.1:7480' } : {});
      if (name === 'BERTH_TLS_CERT' || name === 'BERTH_TLS_KEY') Object.assign(env, { BERTH_TLS_CERT: '/c.pem', BERTH_TLS_KEY: '/k.pem' });
      assert.doesNotThrow(() => resolveConfig({}, env, {}), name);
    }
  });
});

describe('pullThrough.mirrors', () => {
  it('reads HOST=PREFIX pairs from BERTH_PULL_THROUGH_MIRRORS and a mapping from the file', () => {
    assert.deepEqual(resolveConfig({}, { BERTH_PULL_THROUGH_MIRRORS: 'docker.io=hub, ghcr.io=gh' }, {}).pullThrough.mirrors, { 'docker.io': 'hub', 'ghcr.io': 'gh' });
    assert.deepEqual(resolveConfig({ pullThrough: { mirrors: { 'docker.io': 'hub' } } }, {}, {}).pullThrough.mirrors, { 'docker.io': 'hub' });
    assert.throws(() => resolveConfig({}, { BERTH_PULL_THROUGH_MIRRORS: 'docker.io' }, {}), /pullThrough\.mirrors.*HOST=PREFIX/s);
  });
});

describe('parseListen', () => {
  it('splits host and port, including bracketed IPv6', () => {
    assert.deepEqual(parseListen('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(parseListen(':5000'), { host: '0.0.0.0', port: 5000 });
    assert.deepEqual(parseListen('[::1]:443'), { host: '::1', port: 443 });
  });
});

describe('readConfigFile and loadConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, text: string): Promise<string> {
    const p = path.join(dir, name);
    await writeFile(p, text);
    return p;
  }

  it('reads a YAML mapping', async () => {
    const p = await file('ok.yaml', 'listen: 127.0.0.1:7000\nlog:\n  level: debug\nregistry:\n  maxManifestBytes: 8192\n');
    assert.deepEqual(await readConfigFile(p), { listen: '127.0.0.1:7000', log: { level: 'debug' }, registry: { maxManifestBytes: 8192 } });
  });

  it('treats an empty file as no settings', async () => {
    assert.deepEqual(await readConfigFile(await file('empty.yaml', '')), {});
    assert.deepEqual(await readConfigFile(await file('comments.yaml', '# nothing here\n')), {});
  });

  it('rejects invalid YAML', async () => {
    const p = await file('bad.yaml', 'listen: [unclosed\n  log: {\n');
    await rejectsConfigError(readConfigFile(p), /not valid YAML/, /bad\.yaml/);
  });

  it('rejects a document that is not a mapping', async () => {
    await rejectsConfigError(readConfigFile(await file('list.yaml', '- a\n- b\n')), /must be a YAML mapping/);
    await rejectsConfigError(readConfigFile(await file('scalar.yaml', 'just a string\n')), /must be a YAML mapping/);
  });

  it('rejects a missing file', async () => {
    await rejectsConfigError(readConfigFile(path.join(dir, 'missing.yaml')), /config file .*missing.yaml does not exist: check the path given to --config/);
  });

  it('loads file < env < flags and names the sources in errors', async () => {
    const p = await file('load.yaml', 'listen: 127.0.0.1:7000\nlog:\n  level: debug\nshutdownGraceSeconds: 3\n');
    const c = await loadConfig({ file: p, env: { BERTH_LOG_LEVEL: 'warn' }, flags: { listen: '127.0.0.1:7001' } });
    assert.equal(c.listen, '127.0.0.1:7001');
    assert.equal(c.log.level, 'warn');
    assert.equal(c.shutdownGraceSeconds, 3);

    const bad = await file('bad-value.yaml', 'registry:\n  maxManifestBytes: 1\n');
    await rejectsConfigError(loadConfig({ file: bad, env: {} }), /registry\.maxManifestBytes/, new RegExp(`file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});

describe('berth config check (as a process)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-config-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    // The command applies the environment, so start from one without BERTH_* settings.
    return runCli(args, { env: { ...envWithoutBerth(), ...env } });
  }

  it('exits 0 and says the configuration is valid', { timeout: 60_000 }, async () => {
    const p = path.join(dir, 'good.yaml');
    await writeFile(p, 'listen: 127.0.0.1:5000\nstorage:\n  driver: filesystem\n  fsync: true\nmetadata:\n  driver: sqlite\n');
    const r = await run(['config', 'check', p]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration is valid/);
  });

  it('prints the resolved configuration with --print', { timeout: 60_000 }, async () => {
    const p = path.join(dir, 'print.yaml');
    await writeFile(p, 'log:\n  level: debug\n');
    const r = await run(['config', 'check', p, '--print'], { BERTH_SHUTDOWN_GRACE_SECONDS: '7' });
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { log: { level: string }; shutdownGraceSeconds: number };
    assert.equal(json.log.level, 'debug');
    assert.equal(json.shutdownGraceSeconds, 7);
  });

  it('exits 2 and names the bad field', { timeout: 60_000 }, async () => {
    const p = path.join(dir, 'bad.yaml');
    await writeFile(p, 'registry:\n  maxManifestBytes: 12\n');
    const r = await run(['config', 'check', p]);
    assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /registry\.maxManifestBytes/);
    assert.doesNotMatch(r.stdout, /configuration is valid/);
  });

  it('exits 2 on invalid YAML and on a bad environment variable', { timeout: 60_000 }, async () => {
    const yaml = path.join(dir, 'broken.yaml');
    await writeFile(yaml, 'listen: [\n');
    const a = await run(['config', 'check', yaml]);
    assert.equal(a.code, 2, a.stderr);
    assert.match(a.stderr, /not valid YAML/);

    const good = path.join(dir, 'good-env.yaml');
    await writeFile(good, 'listen: 127.0.0.1:5000\n');
    const b = await run(['config', 'check', good], { BERTH_STORAGE_FSYNC: 'perhaps' });
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /BERTH_STORAGE_FSYNC/);
  });
});
