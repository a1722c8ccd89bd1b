/**
 * `berth serve` as a process: graceful shutdown finishes in-flight requests, a restart keeps everything,
 * and the configuration sources apply in order (flags > environment > file > defaults).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { openStores } from '../../src/app.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { RegistryService } from '../../src/registry/service.ts';
import { query } from '../helpers/at-rest.ts';
import { mainScript, repoRoot, startBerth, type BerthProcess } from '../helpers/berth.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('berth serve', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('finishes an in-flight upload on SIGTERM, exits 0, and serves the blob after a restart', async () => {
    let server: BerthProcess = await startBerth();
    cleanup.push(() => server.dispose());
    const data = randomBytes(6 * 1024 * 1024);
    const digest = sha256(data);
    const url = new URL(`/v2/graceful/blob/blobs/uploads/?digest=${digest}`, server.url);
    const req = http.request(url, { method: 'POST', headers: { 'content-length': String(data.length), 'content-type': 'application/octet-stream' } });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
    });
    // Half the body is on the wire when the signal arrives; the rest follows after it. The signal waits until the
    // server has taken the request in (its upload session exists): one that arrives later is refused with 503.
    await new Promise<void>((resolve) => req.write(data.subarray(0, data.length / 2), () => resolve()));
    const deadline = Date.now() + 10_000;
    while (Number((await query<{ n: number | string }>(server, 'select count(*) as n from uploads'))[0]?.n ?? 0) === 0) {
      assert.ok(Date.now() < deadline, 'the server never opened the upload');
      await new Promise((r) => setTimeout(r, 10)); // poll interval, not a wait for the outcome
    }
    const exit = server.stop();
    req.end(data.subarray(data.length / 2));
    assert.equal(await status, 201);
    assert.equal(await exit, 0);

    server = await server.restart();
    const res = await fetch(`${server.url}/v2/graceful/blob/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
  });

  it('takes flags over environment over the config file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cfg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'berth.yaml');
    await writeFile(file, `listen: "127.0.0.1:1"\ndataDir: ${path.join(dir, 'from-file')}\nlog:\n  level: warn\n`);
    const env = { ...process.env, BERTH_DATA_DIR: path.join(dir, 'from-env') } as Record<string, string>;
    delete env.BERTH_METADATA_DRIVER;
    const child = spawn(process.execPath, ['--import', 'tsx', mainScript, 'serve', '--config', file, '--listen', '127.0.0.1:0', '--announce'], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /BERTH_LISTENING (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(url).port, '1', 'the --listen flag must beat the file');
    // The environment beat the file: the database lives under from-env.
    await stat(path.join(dir, 'from-env', 'berth.db'));
    await assert.rejects(stat(path.join(dir, 'from-file')));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('refuses an invalid configuration with exit status 2 and names the field', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cfg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'registry:\n  maxManifestBytes: "lots"\n');
    const child = spawn(process.execPath, ['--import', 'tsx', mainScript, 'serve', '--config', file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 2);
    assert.match(err, /registry\.maxManifestBytes/);
  });

  it('purges abandoned upload sessions and orphaned staged data, keeping live ones', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-purge-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const config = resolveConfig({ dataDir: dir, registry: { createRepositoryOnPush: true } }, {}, {});
    const stores = await openStores(config);
    cleanup.push(() => stores.close());
    const registry = new RegistryService(stores.metadata, stores.blobs, config.registry, pino({ level: 'silent' }));
    const name = 'purge/me' as Parameters<RegistryService['startUpload']>[0];
    const old = await registry.startUpload(name);
    await stores.blobs.startUpload('orphan-staging');
    const cutoff = Date.now() + 1;
    const fresh = await registry.startUpload(name);
    await stores.metadata.touchUpload(fresh.id, cutoff + 60_000);
    const removed = await registry.purgeAbandonedUploads(cutoff + 1000);
    assert.equal(removed, 2);
    assert.equal(await stores.metadata.findUpload(old.id), null);
    assert.equal(await stores.blobs.uploadSize(old.id), null);
    assert.equal(await stores.blobs.uploadSize('orphan-staging'), null);
    assert.notEqual(await stores.metadata.findUpload(fresh.id), null);
    assert.deepEqual(await registry.uploadStatus(name, fresh.id), { size: 0 });
  });
});
