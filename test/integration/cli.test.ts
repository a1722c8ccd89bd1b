/**
 * The `berth` command as a user meets it, run as a child process (`node --import tsx src/main.ts …`): the mistakes
 * a user makes (a port in use, a data directory that cannot be written, a config file that is not there) end with
 * one line that says what and what to do, exit status 2, no stack trace, and nothing written to the data directory;
 * `berth gc` says what the grace period spared and how to collect it now; `--version` is package.json's; progress
 * stays out of pipes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { envWithoutBerth, repoRoot, runCli, startBerth, type BerthProcess, type CliResult } from '../helpers/berth.ts';

type Result = CliResult;

/** Runs `berth …` with a clean BERTH_* environment (plus `env`), optionally as another user. */
function berth(args: string[], options: { env?: Record<string, string>; uid?: number; gid?: number } = {}): Promise<Result> {
  return runCli(args, { env: { ...envWithoutBerth(), ...options.env }, uid: options.uid, gid: options.gid });
}

/** Exit status 2 and exactly one line on stderr, `berth: <message>`, with no stack frame; nothing on stdout. */
function assertUserError(r: Result, pattern: RegExp): void {
  const shown = `--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  assert.equal(r.code, 2, shown);
  assert.equal(r.stdout, '', shown);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr\n${shown}`);
  assert.match(lines[0], /^berth: /, shown);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace\n${shown}`);
  assert.match(lines[0], pattern, shown);
}

async function assertNothingIn(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  assert.deepEqual(await readdir(dir), [], `${dir} is left empty`);
}

describe('berth CLI: user errors, gc, version, progress', () => {
  let work = '';
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
    // Another user (the not-writable case, when run as root) must reach the directories inside.
    await chmod(work, 0o755);
  });
  after(async () => {
    await chmod(path.join(work, 'readonly'), 0o755).catch(() => {});
    await rm(work, { recursive: true, force: true });
  });

  it('--version prints the version in package.json', async () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const r = await berth(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  describe('a port already in use', () => {
    let blocker: Server;
    let port = 0;
    before(async () => {
      blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      port = (blocker.address() as { port: number }).port;
    });
    after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

    it('berth serve: exit 2, one line naming the address and --listen, no keys or credentials written', async () => {
      const dataDir = path.join(work, 'port-in-use');
      const r = await berth(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir]);
      assertUserError(r, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use.*--listen HOST:PORT`));
      await assertNothingIn(dataDir);
    });

    it('the same through BERTH_LISTEN, into an existing empty data directory', async () => {
      const dataDir = path.join(work, 'port-in-use-env');
      await mkdir(dataDir);
      const r = await berth(['serve'], { env: { BERTH_LISTEN: `127.0.0.1:${port}`, BERTH_DATA_DIR: dataDir } });
      assertUserError(r, /already in use/);
      await assertNothingIn(dataDir);
    });
  });

  describe('a data directory that cannot be written', () => {
    // Root may write anywhere: as root the command runs as `nobody`, for whom the directory is read-only.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    let readonly = '';
    before(async () => {
      readonly = path.join(work, 'readonly');
      await mkdir(readonly);
      await chmod(readonly, 0o555);
    });

    it('berth serve with a data directory that cannot be created: exit 2, one line, nothing created', async () => {
      const dataDir = path.join(readonly, 'data');
      const r = await berth(['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], asUser);
      assertUserError(r, new RegExp(`data directory ${dataDir} cannot be created: ${readonly} is not writable by this user: choose another with --data-dir`));
      assert.equal(existsSync(dataDir), false);
    });

    it('berth serve with an existing data directory it may not write: exit 2, one line, nothing written', async () => {
      const r = await berth(['serve', '--listen', '127.0.0.1:0', '--data-dir', readonly], asUser);
      assertUserError(r, new RegExp(`data directory ${readonly} is not writable by this user`));
      await assertNothingIn(readonly);
    });

    it('a maintenance command (berth gc) says the same', async () => {
      const r = await berth(['gc', '--data-dir', path.join(readonly, 'data')], asUser);
      assertUserError(r, /data directory .* cannot be created/);
      await assertNothingIn(readonly);
    });
  });

  describe('a config file that does not exist', () => {
    it('berth serve: exit 2, one line naming the file and --config, nothing written', async () => {
      const dataDir = path.join(work, 'no-config');
      const missing = path.join(work, 'missing.yaml');
      const r = await berth(['serve', '--config', missing, '--listen', '127.0.0.1:0', '--data-dir', dataDir]);
      assertUserError(r, new RegExp(`config file ${missing} does not exist: check the path given to --config`));
      assert.equal(existsSync(dataDir), false);
    });

    it('berth config check and berth gc say the same', async () => {
      const missing = path.join(work, 'missing.yaml');
      assertUserError(await berth(['config', 'check', missing]), /does not exist/);
      const dataDir = path.join(work, 'no-config-gc');
      assertUserError(await berth(['gc', '--config', missing, '--data-dir', dataDir]), /does not exist/);
      assert.equal(existsSync(dataDir), false);
    });
  });

  describe('berth gc and the grace period', () => {
    let server: BerthProcess | undefined;
    const blob = Buffer.from('a blob no manifest references, pushed just now\n');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    before(async () => {
      server = await startBerth();
      const res = await fetch(`${server.url}/v2/cli/spared/blobs/uploads/?digest=${digest}`, {
        method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(res.status, 201, await res.text());
    });
    after(async () => { await server?.dispose(); });

    it('says how many unreferenced blobs the grace period spared and how to collect them now', async () => {
      const r = await server!.cli(['gc']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { blobsDeleted: number; blobsSpared: number; bytesSpared: number };
      assert.equal(report.blobsDeleted, 0);
      assert.equal(report.blobsSpared, 1);
      assert.equal(report.bytesSpared, blob.length);
      assert.match(r.stderr, /^deleted 0 blobs \(0\.0 MiB\), purged 0 abandoned uploads$/m);
      assert.match(r.stderr, /^spared 1 unreferenced blobs \(0\.0 MiB\) that a push uploaded, mounted or checked within the last 3600 s \(the grace period\); to collect them now, while no push is running: berth gc --grace-seconds 0$/m);
      // In a pipe: no progress line (no carriage return, no terminal escape).
      assert.doesNotMatch(r.stderr, /[\r\x1b]/);
    });

    it('--grace-seconds 0 collects them, and then nothing is spared', async () => {
      const r = await server!.cli(['gc', '--grace-seconds', '0']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { blobsDeleted: number; blobsSpared: number };
      assert.equal(report.blobsDeleted, 1);
      assert.equal(report.blobsSpared, 0);
      assert.match(r.stderr, /^deleted 1 blobs/m);
      assert.doesNotMatch(r.stderr, /spared/);
      const head = await fetch(`${server!.url}/v2/cli/spared/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
    });

    it('berth scrub and berth keys rewrap print no progress into a pipe either', async () => {
      for (const args of [['scrub'], ['keys', 'rewrap']]) {
        const r = await server!.cli(args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /[\r\x1b]/, args.join(' '));
        JSON.parse(r.stdout);
      }
    });
  });
});
