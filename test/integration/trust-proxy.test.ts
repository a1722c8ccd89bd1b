/**
 * `trustProxy`: behind a load balancer Berth takes the client's address from `X-Forwarded-For` only when the peer is
 * one it was told to trust — for the audit trail's source address and for `aws:SourceIp` conditions in IAM policies.
 * Without it (the default) the header is ignored: a client cannot claim another address.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBerth, type BerthProcess } from '../helpers/berth.ts';
import { makeTempDir, removeTree } from '../helpers/clients.ts';
import { until } from '../helpers/until.ts';

interface AuditRow { requestId: string; sourceAddress: string; result: string }

describe('trustProxy: the client address behind a load balancer', () => {
  let trusting: BerthProcess;
  let plain: BerthProcess;
  let work: string;
  const keys = new Map<BerthProcess, string>();

  /** A user whose only policy allows reading images from 203.0.113.0/24; its Basic header. */
  async function restrictedUser(b: BerthProcess): Promise<string> {
    assert.equal((await b.cli(['admin', 'user', 'create', 'office'])).code, 0);
    const file = path.join(work, `${b.url.split(':').pop()}-policy.json`);
    await writeFile(file, JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['ecr:BatchGetImage'], Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } } }],
    }));
    assert.equal((await b.cli(['admin', 'policy', 'attach', 'office', 'from-the-office', '--file', file])).code, 0);
    const k = JSON.parse((await b.cli(['admin', 'key', 'create', 'office'])).stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } };
    return `Basic ${Buffer.from(`${k.AccessKey.AccessKeyId}:${k.AccessKey.SecretAccessKey}`).toString('base64')}`;
  }

  /** HEAD of a manifest as the restricted user, claiming to come from `forwardedFor`: the status and request id. */
  async function head(b: BerthProcess, forwardedFor: string): Promise<{ status: number; requestId: string }> {
    const res = await fetch(`${b.url}/v2/team/app/manifests/latest`, { method: 'HEAD', headers: { authorization: keys.get(b)!, 'x-forwarded-for': forwardedFor } });
    return { status: res.status, requestId: res.headers.get('x-request-id') ?? '' };
  }

  async function auditRow(b: BerthProcess, requestId: string): Promise<AuditRow> {
    return until(`the audit row of ${requestId}`, async () => {
      const res = await fetch(`${b.url}/berth/api/v1/audit?limit=1000`, { headers: { authorization: b.rootBasic } });
      return ((await res.json()) as { events: AuditRow[] }).events.find((e) => e.requestId === requestId);
    });
  }

  before(async () => {
    work = await makeTempDir('trust-proxy');
    trusting = await startBerth({ auth: true, env: { BERTH_TRUST_PROXY: '127.0.0.1' } });
    plain = await startBerth({ auth: true });
    for (const b of [trusting, plain]) keys.set(b, await restrictedUser(b));
  });

  after(async () => {
    await trusting?.dispose();
    await plain?.dispose();
    if (work) await removeTree(work);
  });

  it('from a trusted proxy, X-Forwarded-For is the client: aws:SourceIp matches it and the audit trail records it', async () => {
    const inside = await head(trusting, '203.0.113.7');
    // Allowed by the condition; the repository does not exist.
    assert.equal(inside.status, 404);
    const outside = await head(trusting, '198.51.100.20');
    assert.equal(outside.status, 403);
    const row = await auditRow(trusting, outside.requestId);
    assert.equal(row.sourceAddress, '198.51.100.20');
    assert.notEqual(row.result, 'success');
  });

  it('without trustProxy the header is ignored: the peer address decides', async () => {
    const claimed = await head(plain, '203.0.113.7');
    assert.equal(claimed.status, 403, 'a client cannot claim an allowed address');
    const row = await auditRow(plain, claimed.requestId);
    assert.equal(row.sourceAddress, '127.0.0.1');
  });
});
