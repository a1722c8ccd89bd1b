/**
 * Does the audit trail slow pushes? Two servers with access control on, one with `audit.enabled` and one without,
 * side by side under the same load: 8 clients push small images (two monolithic blob POSTs and a manifest PUT each,
 * three audited requests) to each server in alternating rounds, so that load on the machine falls on both alike.
 * Prints pushes per second of each and the ratio, and the audit counters of /metrics.
 *
 *   node --import tsx bench/audit.ts
 */
import { randomBytes, createHash } from 'node:crypto';
import { startBerth, type BerthProcess } from '../test/helpers/berth.ts';
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
async function pushes(url: string, auth: string, n: number, conc: number, repo: string) {
  let next = 0;
  const one = async (i: number) => {
    const layer = randomBytes(4096); const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', i, r: randomBytes(4).toString('hex') }));
    for (const b of [layer, config]) {
      const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha(b)}`, { method: 'POST', body: new Uint8Array(b), headers: { authorization: auth } }); await r.arrayBuffer();
      if (r.status !== 201) throw new Error(`blob ${r.status}`);
    }
    const m = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }] });
    const r = await fetch(`${url}/v2/${repo}/manifests/t${i}`, { method: 'PUT', body: m, headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } }); await r.arrayBuffer();
    if (r.status !== 201) throw new Error(`manifest ${r.status}`);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => { for (;;) { const i = next++; if (i >= n) return; await one(i); } }));
  return (performance.now() - t0) / 1000;
}
const on = await startBerth({ auth: true, env: { BERTH_AUDIT_ENABLED: 'true', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true' } });
const off = await startBerth({ auth: true, env: { BERTH_AUDIT_ENABLED: 'false', BERTH_CREATE_REPOSITORY_ON_PUSH: 'true' } });
const t: Record<string, number> = { on: 0, off: 0 };
try {
  await pushes(on.url, on.rootBasic, 30, 8, 'warm/up'); await pushes(off.url, off.rootBasic, 30, 8, 'warm/up');
  for (let round = 0; round < 8; round++) {
    const order: Array<['on' | 'off', BerthProcess]> = round % 2 ? [['on', on], ['off', off]] : [['off', off], ['on', on]];
    for (const [mode, b] of order) {
      const s = await pushes(b.url, b.rootBasic, 60, 8, `bench/r${round}`);
      t[mode] += s;
      console.log(`round ${round} audit ${mode}: ${(60 / s).toFixed(1)} pushes/s`);
    }
  }
  const m = await (await fetch(`${on.url}/metrics`)).text(); console.log(m.split('\n').filter((l) => l.startsWith('berth_audit_')).join(' | '));
  console.log(`total: audit on ${(480 / t.on).toFixed(1)} pushes/s (${(1440 / t.on).toFixed(0)} audited requests/s), off ${(480 / t.off).toFixed(1)} pushes/s; on/off ${(t.off / t.on).toFixed(3)}`);
} finally { await on.dispose(); await off.dispose(); }
