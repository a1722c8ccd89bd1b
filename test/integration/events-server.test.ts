/**
 * Events and webhooks through a running server: skopeo pushes trigger signed `ECR Image Action` PUSH deliveries, OCI
 * deletes DELETE ones; subscriptions and the delivery log through /berth/api/v1 and `berth admin webhook`; an event
 * committed but not yet delivered when the node is killed (SIGKILL) is delivered after the restart; a receiver that
 * never answers does not slow pushes; two nodes on one PostgreSQL database deliver each event once.
 * Short retry settings (BERTH_WEBHOOK_*) instead of sleeping through the real schedule.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { CreatePullThroughCacheRuleCommand, ECRClient } from '@aws-sdk/client-ecr';
import { createContainersEnv, requireClients, run, which } from '../helpers/clients.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../helpers/upstream-registry.ts';
import { createPostgresDatabase, dropPostgresDatabase, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { sharedStorageEnv } from '../helpers/storage.ts';
import { sha256 } from '../helpers/oci.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { until } from '../helpers/until.ts';

const SECRET = 'server-test-webhook-secret';
const ENV = {
  BERTH_WEBHOOK_POLL_MILLISECONDS: '50',
  BERTH_WEBHOOK_RETRY_BASE_SECONDS: '0.05',
  BERTH_WEBHOOK_RETRY_MAX_SECONDS: '0.2',
  BERTH_WEBHOOK_TIMEOUT_SECONDS: '2',
  BERTH_JOB_LEASE_SECONDS: '1',
  BERTH_ACCOUNT_ID: '123456789012',
  BERTH_REGION: 'eu-central-1',
};
const ARCHIVE = '/work/shared/images/alpine-3.10.docker-archive.tar.gz';

async function pushBlob(base: string, repo: string, data: Buffer): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', body: new Uint8Array(data) });
  assert.equal(res.status, 201, await res.text());
}

/** Pushes a one-layer image over HTTP; returns its manifest digest. */
async function pushImage(base: string, repo: string, tag: string, seed: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer ${seed}`);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  });
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 201, await res.text());
  return sha256(manifest);
}

async function api(base: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}/berth/api/v1${p}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

describe('events through a running server', () => {
  let berth: BerthProcess;
  let receiver: WebhookReceiver;
  let sub: { id: string; secret: string };
  let work: string;
  let tarFile: string | undefined;
  const alpineTar = async () => {
    if (!tarFile) {
      tarFile = path.join(work, 'alpine.tar');
      await pipeline(createReadStream(ARCHIVE), createGunzip(), createWriteStream(tarFile));
    }
    return tarFile;
  };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-events-'));
    receiver = await new WebhookReceiver(SECRET).start();
    berth = await startBerth({ env: ENV });
  });
  after(async () => {
    await berth?.dispose();
    await receiver?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('subscriptions through /berth/api/v1/webhooks, validated', async () => {
    const bad = await api(berth.url, 'POST', '/webhooks', { url: receiver.url, eventTypes: ['Nope'] });
    assert.equal(bad.status, 400);
    const created = await api(berth.url, 'POST', '/webhooks', { url: receiver.url, secret: SECRET, eventTypes: ['ECR Image Action'], repositoryFilter: 'events/*' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    sub = created.json;
    assert.equal(sub.secret, SECRET);
    const listed = await api(berth.url, 'GET', '/webhooks');
    assert.deepEqual(listed.json.webhooks.map((w: { id: string }) => w.id), [sub.id]);
    assert.equal(listed.json.webhooks[0].secret, undefined, 'the secret is shown only at creation');
    assert.equal((await api(berth.url, 'GET', '/webhooks/nope')).status, 404);
  });

  it('a skopeo push delivers a signed ECR Image Action PUSH; an OCI delete a DELETE', { skip: which('skopeo') ? false : 'skopeo not installed' }, async () => {
    const target = `docker://${berth.host}/events/alpine:3.10`;
    const tar = await alpineTar();
    await run('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', '--format', 'oci', `docker-archive:${tar}`, target], { timeoutMs: 120_000 });
    const [push] = await receiver.waitFor(1);
    assert.equal(push.signatureValid, true);
    assert.equal(push.event['detail-type'], 'ECR Image Action');
    assert.equal(push.event.source, 'aws.ecr');
    assert.equal(push.event.account, '123456789012');
    assert.equal(push.event.region, 'eu-central-1');
    assert.deepEqual(push.event.resources, []);
    assert.match(push.event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const digest = push.event.detail['image-digest'] as string;
    assert.deepEqual(push.event.detail, { 'action-type': 'PUSH', result: 'SUCCESS', 'repository-name': 'events/alpine', 'image-digest': digest, 'image-tag': '3.10', 'manifest-media-type': 'application/vnd.oci.image.manifest.v1+json', 'artifact-media-type': 'application/vnd.oci.image.config.v1+json' });

    const del = await fetch(`${berth.url}/v2/events/alpine/manifests/${digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const [, deleted] = await receiver.waitFor(2);
    assert.deepEqual(deleted.event.detail, { 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': 'events/alpine', 'image-digest': digest, 'image-tag': '3.10' });
    assert.notEqual(deleted.eventId, push.eventId);
  });

  it('a podman push delivers its PUSH event', { skip: which('podman') ? false : 'podman not installed' }, async () => {
    const cenv = await createContainersEnv({ insecureRegistries: [berth.host], storageDriver: 'vfs' });
    try {
      const loaded = await cenv.podman(['load', '-i', await alpineTar()], { timeoutMs: 120_000 });
      const image = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)![1];
      const before = receiver.received.length;
      await cenv.podman(['push', '--tls-verify=false', image, `${berth.host}/events/podman:1`], { timeoutMs: 120_000 });
      const got = (await receiver.waitFor(before + 1)).slice(before);
      assert.equal(got.length, 1);
      assert.equal(got[0].signatureValid, true);
      assert.equal(got[0].event.detail['action-type'], 'PUSH');
      assert.equal(got[0].event.detail['repository-name'], 'events/podman');
      assert.equal(got[0].event.detail['image-tag'], '1');
    } finally {
      await cenv.dispose();
    }
  });

  it('the delivery log through the API and the CLI; redelivery on request', async () => {
    const before = receiver.received.length;
    await pushImage(berth.url, 'events/log', 'v1', 'log');
    await receiver.waitFor(before + 1);
    const log = await until('the delivered row', async () => {
      const r = await api(berth.url, 'GET', `/webhooks/${sub.id}/deliveries?status=delivered&limit=1`);
      return r.json.deliveries[0]?.repository === 'events/log' ? r.json.deliveries : null;
    });
    assert.equal(log[0].attempts, 1);
    assert.equal(log[0].lastStatusCode, 204);
    const again = await api(berth.url, 'POST', `/webhooks/${sub.id}/deliveries/${log[0].id}/redeliver`);
    assert.equal(again.status, 202);
    const got = await receiver.waitFor(before + 2);
    assert.equal(got.at(-1)!.eventId, got.at(-2)!.eventId, 'a redelivery carries the same event id');

    const cli = await berth.cli(['admin', 'webhook', 'deliveries', sub.id, '--limit', '2']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).deliveries.length, 2);
    const listed = await berth.cli(['admin', 'webhook', 'list']);
    assert.equal(JSON.parse(listed.stdout).webhooks[0].url, receiver.url);
  });

  it('a receiver that never answers does not slow pushes', async () => {
    const time = async (n: number, label: string) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await pushImage(berth.url, `events/slow-${label}`, `t${i}`, `${label}${i}`);
      return (performance.now() - t0) / n;
    };
    receiver.mode = { kind: 'ok' };
    const baseline = await time(10, 'ok');
    receiver.mode = { kind: 'hang' };
    const hanging = await time(10, 'hang');
    receiver.mode = { kind: 'ok' };
    // A push's cost is its own requests and one transaction; the deliveries queue in the database.
    assert.ok(hanging < baseline * 3 + 50, `push ${hanging.toFixed(1)} ms with a hanging receiver vs ${baseline.toFixed(1)} ms`);
    console.log(`# per push: ${baseline.toFixed(1)} ms with a healthy receiver, ${hanging.toFixed(1)} ms with one that never answers`);
  });

  it('an event committed before a SIGKILL is delivered after the restart', async () => {
    receiver.mode = { kind: 'fail' };
    const digest = await pushImage(berth.url, 'events/crash', 'v1', 'crash');
    await until('a failed attempt', async () => {
      const r = await api(berth.url, 'GET', `/webhooks/${sub.id}/deliveries?status=pending`);
      return r.json.deliveries.find((d: { repository: string; attempts: number }) => d.repository === 'events/crash' && d.attempts > 0);
    });
    await berth.kill();
    receiver.mode = { kind: 'ok' };
    berth = await berth.restart({ env: ENV });
    const got = await until('the delivery after the restart', async () => receiver.received.find((r) => r.event.detail['image-digest'] === digest && r.event.detail['repository-name'] === 'events/crash'));
    assert.equal(got.signatureValid, true);
  });
});

describe('two nodes on one PostgreSQL database', () => {
  let a: BerthProcess;
  let b: BerthProcess;
  let receiver: WebhookReceiver;
  let dir: string;
  let postgresUrl: string;
  let storage: Awaited<ReturnType<typeof sharedStorageEnv>>;

  before(async () => {
    receiver = await new WebhookReceiver(SECRET).start();
    dir = await mkdtemp(path.join(tmpdir(), 'berth-events-two-'));
    postgresUrl = await createPostgresDatabase();
    storage = await sharedStorageEnv(dir);
    await writeFile(path.join(dir, 'master.keys'), `1 ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const env = { ...ENV, ...storage.env, BERTH_SECRET_KEY: randomBytes(32).toString('base64'), BERTH_ENCRYPTION_KEY_FILE: path.join(dir, 'master.keys') };
    a = await startBerth({ metadata: 'postgres', postgresUrl, env });
    b = await startBerth({ metadata: 'postgres', postgresUrl, env });
  }, { timeout: 120_000 });
  after(async () => {
    for (const n of [a, b]) if (n) await n.stop();
    for (const n of [a, b]) if (n) await rm(n.dataDir, { recursive: true, force: true });
    await storage?.dispose();
    if (postgresUrl) await dropPostgresDatabase(postgresUrl);
    await rm(dir, { recursive: true, force: true });
    await receiver?.close();
  });

  it('deliver each event once, in order per repository', async () => {
    assert.equal((await api(a.url, 'POST', '/webhooks', { url: receiver.url, secret: SECRET })).status, 201);
    for (let i = 0; i < 20; i++) await pushImage((i % 2 ? a : b).url, `two/r${i % 3}`, `t${i}`, `two${i}`);
    await receiver.waitFor(20);
    await new Promise((r) => setTimeout(r, 500));
    const ids = receiver.received.map((r) => r.eventId);
    assert.equal(ids.length, 20);
    assert.equal(new Set(ids).size, 20);
    for (let r = 0; r < 3; r++) {
      const tags = receiver.received.filter((x) => x.event.detail['repository-name'] === `two/r${r}`).map((x) => Number(String(x.event.detail['image-tag']).slice(1)));
      assert.deepEqual(tags, [...tags].sort((p, q) => p - q), `two/r${r} in push order`);
    }
  });
});

describe('a pull-through import', { skip: requireClients(['docker-registry']).skip }, () => {
  let berth: BerthProcess;
  let upstream: UpstreamRegistry;
  let receiver: WebhookReceiver;

  before(async () => {
    receiver = await new WebhookReceiver(SECRET).start();
    upstream = await startUpstreamRegistry();
    await upstream.direct.pushImage('team/cached', 'v1', { layers: 1, layerSize: 1000 });
    berth = await startBerth({ env: { ...ENV, BERTH_PULL_THROUGH_COMPLETE_IMAGES_AFTER_SECONDS: '0' } });
    const ecr = new ECRClient({ endpoint: berth.url, region: 'us-east-1', credentials: berth.root });
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: 'up', upstreamRegistryUrl: upstream.url }));
    ecr.destroy();
  });
  after(async () => {
    await berth?.dispose();
    await upstream?.dispose();
    await receiver?.close();
  });

  it('is an ECR Pull Through Cache Action, not a push', async () => {
    assert.equal((await api(berth.url, 'POST', '/webhooks', { url: receiver.url, secret: SECRET, repositoryFilter: 'up/*' })).status, 201);
    const m = await fetch(`${berth.url}/v2/up/team/cached/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(m.status, 200);
    const digest = m.headers.get('docker-content-digest');
    const [got] = await receiver.waitFor(1);
    assert.equal(got.signatureValid, true);
    assert.equal(got.event['detail-type'], 'ECR Pull Through Cache Action');
    assert.deepEqual(got.event.resources, ['arn:aws:ecr:eu-central-1:123456789012:repository/up/team/cached']);
    const { 'upstream-registry-url': url, ...rest } = got.event.detail as Record<string, string>;
    assert.ok(url && upstream.url.includes(url.replace(/^https?:\/\//, '')), `upstream-registry-url ${url}`);
    assert.deepEqual(rest, { 'rule-version': '1', 'sync-status': 'SUCCESS', 'ecr-repository-prefix': 'up', 'repository-name': 'up/team/cached', 'image-tag': 'v1', 'image-digest': digest });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.received.length, 1, 'no PUSH event besides');
  });
});
