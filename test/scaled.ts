/**
 * The scaled-out run of the suite: PostgreSQL metadata and S3 blob storage (a real Ceph RADOS Gateway, started by
 * .ci/start-s3.sh), every test file of the embedded run except the unit tests (pure functions: no server, no
 * database, nothing the backend can change). Starts the gateway once for all files (configured by
 * test/helpers/s3.ts, with its test KMS key), runs `node --test`, then frees the gateway's space and stops it.
 *
 *   npm run test:scaled [-- files…]
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ensureS3, releaseS3 } from './helpers/s3.ts';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? testFiles(p) : e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : testFiles('test').filter((f) => !f.startsWith(path.join('test', 'unit') + path.sep) && !f.startsWith(path.join('test', 'browser') + path.sep)).sort();
const server = await ensureS3();
process.stderr.write(`S3: ${server.endpoint}${server.startedHere ? ` (started in ${server.startSeconds.toFixed(0)} s)` : ' (already running)'}\n`);
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, BERTH_TEST_METADATA: 'postgres', BERTH_TEST_STORAGE: 's3', BERTH_TEST_S3_KEEP: '1' },
  });
  child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await releaseS3();
process.exit(code);
