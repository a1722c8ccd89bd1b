import { useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import type { SessionInfo } from '../../../src/http/console/api.ts';
import type { ReferrerDescriptor, ReferrersIndex } from '../../../src/oci/manifest.ts';
import { berth, blobJson, ecr, type Out } from '../api.ts';
import { bytes, isoMinute, shortDigest, when, SEVERITIES } from '../format.ts';
import { CopyCommand, Problem, Severity, errorText } from '../components.tsx';
import { link } from '../links.ts';
import { markReady } from '../ready.ts';

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
}
interface Manifest {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}
interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; User?: string; WorkingDir?: string; Labels?: Record<string, string> };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
}
type Findings = Out<'DescribeImageScanFindings'>;
type ReplicationStatus = NonNullable<Out<'DescribeImageReplicationStatus'>['replicationStatuses']>[number];
type Detail = NonNullable<Out<'DescribeImages'>['imageDetails']>[number];

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json',
];

/** The annotation with a referrer's creation time (an SBOM's, a signature's), shown in a column of its own. */
const CREATED = 'org.opencontainers.image.created';

const attr = (f: { attributes?: Array<{ key?: string; value?: string }> }, key: string) => f.attributes?.find((a) => a.key === key)?.value ?? '';

export function ImagePage({ name, digest, info }: { name: string; digest: string; info: SessionInfo }) {
  const [manifest, setManifest] = useState<Manifest | null>(null);
  const [detail, setDetail] = useState<Detail | null>(null);
  const [config, setConfig] = useState<ImageConfig | null>(null);
  const [findings, setFindings] = useState<Findings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [scanError, setScanError] = useState<string | null>(null);
  const [replication, setReplication] = useState<ReplicationStatus[] | null>(null);
  const [referrers, setReferrers] = useState<ReferrerDescriptor[] | null>(null);
  const [referrersError, setReferrersError] = useState<string | null>(null);
  const [severity, setSeverity] = useState('');
  const [pkg, setPkg] = useState('');

  useEffect(() => {
    if (manifest && findings) markReady('image');
  }, [manifest, findings]);

  // Layout effects start the requests as soon as the page renders, without waiting for a paint; all three at once.
  useLayoutEffect(() => {
    setManifest(null);
    setConfig(null);
    setFindings(null);
    setError(null);
    setScanError(null);
    ecr('DescribeImageScanFindings', { repositoryName: name, imageId: { imageDigest: digest }, maxResults: 1000 })
      .then(setFindings, (err) => setScanError(errorText(err)));
    setReplication(null);
    // Where this image has been copied to (ECR replication); an empty list when the registry replicates nothing.
    ecr('DescribeImageReplicationStatus', { repositoryName: name, imageId: { imageDigest: digest } })
      .then((out) => setReplication(out.replicationStatuses ?? []), () => setReplication(null));
    // Signatures, SBOMs and other artifacts whose subject is this image (the OCI referrers index).
    setReferrers(null);
    setReferrersError(null);
    berth<ReferrersIndex>(`/repositories/${name}/images/${encodeURIComponent(digest)}/referrers`)
      .then((index) => setReferrers(index.manifests), (err) => setReferrersError(errorText(err)));
    (async () => {
      try {
        const [got, described] = await Promise.all([
          ecr('BatchGetImage', { repositoryName: name, imageIds: [{ imageDigest: digest }], acceptedMediaTypes: ACCEPT }),
          ecr('DescribeImages', { repositoryName: name, imageIds: [{ imageDigest: digest }] }),
        ]);
        const image = got.images?.[0];
        if (!image?.imageManifest) throw new Error(got.failures?.[0]?.failureReason ?? 'image not found');
        const m = JSON.parse(image.imageManifest) as Manifest;
        setManifest(m);
        setDetail(described.imageDetails?.[0] ?? null);
        if (m.config && /image\.config|container\.image/.test(m.config.mediaType ?? '')) blobJson<ImageConfig>(name, m.config.digest).then(setConfig, () => setConfig(null));
      } catch (err) {
        setError(errorText(err));
      }
    })();
  }, [name, digest]);

  const rows = useMemo(() => {
    const all = findings?.imageScanFindings?.findings ?? [];
    const p = pkg.trim().toLowerCase();
    return all.filter((f) => (!severity || f.severity === severity) && (!p || attr(f, 'package_name').toLowerCase().includes(p)));
  }, [findings, severity, pkg]);

  const tags = detail?.imageTags ?? [];
  const ref = tags[0] ? `${info.registryHost}/${name}:${tags[0]}` : `${info.registryHost}/${name}@${digest}`;
  const sbom = (format: string) => `/berth/api/v1/repositories/${name}/images/${digest}/sbom?format=${format}`;
  const layersTotal = manifest?.layers?.reduce((a, l) => a + l.size, 0) ?? 0;

  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb"><a href={link.repositories()}>Repositories</a> / <a href={link.repository(name)}>{name}</a> / <span aria-current="page">{shortDigest(digest)}</span></nav>
      <h1 tabIndex={-1}>{name}{tags.length > 0 ? `:${tags.join(', ')}` : ''}</h1>
      <p class="mono small break">{digest}</p>
      <Problem error={error} />
      {manifest && (
        <>
          <div class="cards">
            <div class="card">
              <h2>Image</h2>
              <dl>
                <dt>Media type</dt><dd class="mono small">{manifest.mediaType ?? detail?.imageManifestMediaType}</dd>
                {manifest.artifactType && <><dt>Artifact type</dt><dd class="mono small">{manifest.artifactType}</dd></>}
                <dt>Size</dt><dd>{bytes(detail?.imageSizeInBytes)}</dd>
                <dt>Pushed</dt><dd>{when(detail?.imagePushedAt)}</dd>
                <dt>Last pulled</dt><dd>{when(detail?.lastRecordedPullTime)}</dd>
                {config && <><dt>Platform</dt><dd>{config.os}/{config.architecture}</dd></>}
                {manifest.subject && <><dt>Refers to</dt><dd><a href={link.image(name, manifest.subject.digest)} class="mono">{shortDigest(manifest.subject.digest)}</a></dd></>}
              </dl>
            </div>
            <div class="card">
              <h2>Pull</h2>
              <CopyCommand label="docker" command={`docker pull ${ref}`} />
              <CopyCommand label="podman" command={`podman pull ${ref}`} />
              <h2>SBOM</h2>
              <p><a href={sbom('cyclonedx')} download={`${name.replace(/\//g, '_')}-${shortDigest(digest)}.cdx.json`}>CycloneDX</a> · <a href={sbom('spdx')} download={`${name.replace(/\//g, '_')}-${shortDigest(digest)}.spdx.json`}>SPDX</a></p>
            </div>
          </div>
          {replication && (
            <>
              <h2>Replication</h2>
              {replication.length === 0 ? <p class="muted" data-testid="not-replicated">Not replicated.</p> : (
                <div class="table-wrap"><table data-testid="replication">
                  <thead><tr><th scope="col">Region</th><th scope="col">Registry</th><th scope="col">Status</th><th scope="col">Failure</th></tr></thead>
                  <tbody>{replication.map((r) => (
                    <tr><td>{r.region}</td><td class="mono small">{r.registryId}</td>
                      <td class={r.status === 'COMPLETE' ? 'ok' : r.status === 'FAILED' ? 'bad' : undefined}>{r.status}</td><td class="small">{r.failureCode ?? ''}</td></tr>
                  ))}</tbody>
                </table></div>
              )}
            </>
          )}
          <h2>Referrers</h2>
          {referrersError && <p class="muted">{referrersError}</p>}
          {referrers && referrers.length === 0 && <p class="muted" data-testid="no-referrers">No signatures, SBOMs or other artifacts refer to this image.</p>}
          {referrers && referrers.length > 0 && (
            <div class="table-wrap"><table data-testid="referrers" class="referrers">
              <thead><tr><th scope="col">Artifact type</th><th scope="col">Digest</th><th scope="col" class="num">Size</th><th scope="col">Created (UTC)</th><th scope="col">Annotations</th></tr></thead>
              <tbody>{referrers.map((r) => {
                const { [CREATED]: created, ...others } = r.annotations ?? {};
                return (
                  <tr>
                    <th scope="row" class="mono small">{r.artifactType ?? r.mediaType}</th>
                    <td><a class="mono" href={link.image(name, r.digest)} title={r.digest}>{shortDigest(r.digest)}</a></td>
                    <td class="num">{bytes(r.size)}</td>
                    <td class="small nowrap">{created ? isoMinute(created) : '—'}</td>
                    <td class="mono small break">{Object.entries(others).map(([k, v]) => <div>{k}={v}</div>)}</td>
                  </tr>
                );
              })}</tbody>
            </table></div>
          )}
          {manifest.manifests && (
            <>
              <h2>Platforms</h2>
              <div class="table-wrap"><table>
                <thead><tr><th scope="col">Platform</th><th scope="col">Manifest</th><th scope="col" class="num">Size</th></tr></thead>
                <tbody>{manifest.manifests.map((d) => (
                  <tr><td>{d.platform ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? `/${d.platform.variant}` : ''}` : d.artifactType ?? 'unknown'}</td>
                    <td><a class="mono" href={link.image(name, d.digest)}>{shortDigest(d.digest)}</a></td><td class="num">{bytes(d.size)}</td></tr>
                ))}</tbody>
              </table></div>
            </>
          )}
          {manifest.layers && (
            <>
              <h2>Layers <span class="muted">({manifest.layers.length}, {bytes(layersTotal)})</span></h2>
              <div class="table-wrap"><table data-testid="layers">
                <thead><tr><th scope="col">#</th><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col" class="num">Size</th></tr></thead>
                <tbody>{manifest.layers.map((l, i) => (
                  <tr><td>{i + 1}</td><td class="mono">{shortDigest(l.digest)}</td><td class="small">{l.mediaType}</td><td class="num">{bytes(l.size)}</td></tr>
                ))}</tbody>
              </table></div>
            </>
          )}
          {config && (
            <details>
              <summary>Configuration and history</summary>
              <dl>
                <dt>Created</dt><dd>{config.created ?? '—'}</dd>
                <dt>Entrypoint</dt><dd class="mono">{JSON.stringify(config.config?.Entrypoint ?? null)}</dd>
                <dt>Command</dt><dd class="mono">{JSON.stringify(config.config?.Cmd ?? null)}</dd>
                <dt>User</dt><dd>{config.config?.User || 'root'}</dd>
                <dt>Environment</dt><dd class="mono small">{(config.config?.Env ?? []).join('\n')}</dd>
              </dl>
              <ol class="history">{(config.history ?? []).map((h) => <li><span class="muted small">{h.created}</span> <code>{h.created_by ?? h.comment ?? ''}</code>{h.empty_layer ? <span class="muted small"> (no layer)</span> : null}</li>)}</ol>
            </details>
          )}
        </>
      )}
      <h2>Vulnerabilities</h2>
      {scanError && <p class="muted">{scanError}</p>}
      {findings && (
        <>
          <p>
            Scan {findings.imageScanStatus?.status?.toLowerCase()}{findings.imageScanStatus?.description ? `: ${findings.imageScanStatus.description}` : ''}
            {findings.imageScanFindings?.imageScanCompletedAt ? ` · ${when(findings.imageScanFindings.imageScanCompletedAt)}` : ''}
            {findings.imageScanFindings?.vulnerabilitySourceUpdatedAt ? ` · data of ${when(findings.imageScanFindings.vulnerabilitySourceUpdatedAt)}` : ''}
          </p>
          <p><Severity counts={findings.imageScanFindings?.findingSeverityCounts as Record<string, number>} /></p>
          <div class="toolbar">
            <label for="sev">Severity</label>
            <select id="sev" value={severity} onChange={(e) => setSeverity((e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {SEVERITIES.map((s) => <option value={s}>{s.toLowerCase()}</option>)}
            </select>
            <label for="pkg">Package</label>
            <input id="pkg" type="search" value={pkg} onInput={(e) => setPkg((e.target as HTMLInputElement).value)} placeholder="Package name" />
          </div>
          <p class="count" aria-live="polite">{rows.length} of {findings.imageScanFindings?.findings?.length ?? 0} findings</p>
          <div class="table-wrap"><table data-testid="findings">
            <thead><tr><th scope="col">Advisory</th><th scope="col">Severity</th><th scope="col">Package</th><th scope="col">Version</th><th scope="col">Description</th></tr></thead>
            <tbody>{rows.map((f) => (
              <tr>
                <td>{f.uri ? <a href={f.uri} rel="noreferrer noopener" target="_blank">{f.name}</a> : f.name}</td>
                <td><span class={`sev sev-${(f.severity ?? 'undefined').toLowerCase()}`}>{f.severity}</span></td>
                <td>{attr(f, 'package_name')}</td>
                <td class="mono small">{attr(f, 'package_version')}</td>
                <td class="small desc">{f.description}</td>
              </tr>
            ))}</tbody>
          </table></div>
        </>
      )}
    </section>
  );
}
