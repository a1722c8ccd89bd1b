import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import type { SessionInfo } from '../../../src/http/console/api.ts';
import { ecr, type Out } from '../api.ts';
import { ago, bytes, shortDigest, when } from '../format.ts';
import { Confirm, CopyCommand, Problem, Severity, errorText } from '../components.tsx';
import { link } from '../links.ts';
import { markReady } from '../ready.ts';

type Repo = NonNullable<Out<'DescribeRepositories'>['repositories']>[number];
type Image = NonNullable<Out<'DescribeImages'>['imageDetails']>[number];

interface Deletion {
  image: Image;
  tag: string | null;
}

export function RepositoryPage({ name, info }: { name: string; info: SessionInfo }) {
  const [repo, setRepo] = useState<Repo | null>(null);
  const [images, setImages] = useState<Image[] | null>(null);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Deletion | null>(null);
  const [busy, setBusy] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);

  useEffect(() => {
    if (images && repo) markReady('repository');
  }, [images, repo]);

  const loadImages = async (token?: string) => {
    const out = await ecr('DescribeImages', { repositoryName: name, maxResults: 1000, nextToken: token });
    const list = (out.imageDetails ?? []).slice().sort((a, b) => (b.imagePushedAt ?? 0) - (a.imagePushedAt ?? 0));
    setImages((old) => (token && old ? [...old, ...list] : list));
    setNext(out.nextToken);
  };

  const load = async () => {
    setError(null);
    try {
      const [out] = await Promise.all([ecr('DescribeRepositories', { repositoryNames: [name] }), loadImages()]);
      setRepo(out.repositories?.[0] ?? null);
    } catch (err) {
      setError(errorText(err));
    }
  };
  // Layout effects start the requests as soon as the page renders, without waiting for a paint.
  useLayoutEffect(() => {
    setRepo(null);
    setImages(null);
    void load();
  }, [name]);

  const setting = async (what: 'mutability' | 'scan', value: boolean) => {
    setError(null);
    setMessage(null);
    try {
      if (what === 'mutability') await ecr('PutImageTagMutability', { repositoryName: name, imageTagMutability: value ? 'IMMUTABLE' : 'MUTABLE' });
      else await ecr('PutImageScanningConfiguration', { repositoryName: name, imageScanningConfiguration: { scanOnPush: value } });
      setMessage('Setting saved.');
      const out = await ecr('DescribeRepositories', { repositoryNames: [name] });
      setRepo(out.repositories?.[0] ?? null);
    } catch (err) {
      setError(errorText(err));
    }
  };

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    setError(null);
    setMessage(null);
    try {
      const id = deleting.tag ? { imageTag: deleting.tag } : { imageDigest: deleting.image.imageDigest };
      const out = await ecr('BatchDeleteImage', { repositoryName: name, imageIds: [id] });
      const failure = out.failures?.[0];
      // The list is read again first: the message is shown once the table says the same.
      await loadImages();
      if (failure) setError(`${failure.failureCode}: ${failure.failureReason}`);
      else setMessage(deleting.tag ? `Tag ${deleting.tag} deleted.` : `Image ${shortDigest(deleting.image.imageDigest)} deleted.`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      setDeleting(null);
    }
  };

  const host = info.registryHost;
  const first = images?.find((i) => i.imageDigest === selected) ?? images?.find((i) => i.imageTags?.length) ?? images?.[0];
  const ref = first ? (first.imageTags?.[0] ? `${host}/${name}:${first.imageTags[0]}` : `${host}/${name}@${first.imageDigest}`) : `${host}/${name}:latest`;

  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb"><a href={link.repositories()}>Repositories</a> / <span aria-current="page">{name}</span></nav>
      <h1 tabIndex={-1}>{name}</h1>
      <Problem error={error} />
      {message && <p class="ok" role="status">{message}</p>}
      {repo && (
        <div class="cards">
          <div class="card">
            <h2>Settings</h2>
            <label class="switch"><input type="checkbox" checked={repo.imageTagMutability?.startsWith('IMMUTABLE')} onChange={(e) => setting('mutability', (e.target as HTMLInputElement).checked)} /> Tag immutability</label>
            <label class="switch"><input type="checkbox" checked={!!repo.imageScanningConfiguration?.scanOnPush} onChange={(e) => setting('scan', (e.target as HTMLInputElement).checked)} /> Scan on push</label>
            <p class="muted small">Created {when(repo.createdAt)} · {repo.encryptionConfiguration?.encryptionType ?? 'AES256'}</p>
            <p><a href={link.lifecycle(name)}>Lifecycle policy</a> · <a href={link.policy(name)}>Repository policy</a></p>
          </div>
          <div class="card">
            <h2>Pull</h2>
            <CopyCommand label="docker" command={`docker pull ${ref}`} />
            <CopyCommand label="podman" command={`podman pull ${ref}`} />
            <p class="muted small">URI <code>{repo.repositoryUri}</code></p>
          </div>
        </div>
      )}
      <h2>Images {images && <span class="muted">({images.length}{next ? '+' : ''})</span>}</h2>
      {images && images.length === 0 && <p>No images yet. Push one with <code>docker push {host}/{name}:TAG</code>.</p>}
      {images && images.length > 0 && (
        <div class="table-wrap">
          <table class="images" data-testid="images">
            <thead><tr><th scope="col">Tags</th><th scope="col">Digest</th><th scope="col" class="num">Size</th><th scope="col">Pushed</th><th scope="col">Last pulled</th><th scope="col">Scan</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {images.map((img) => (
                <tr key={img.imageDigest} class={img.imageDigest === first?.imageDigest ? 'selected' : undefined}>
                  <td class="tags">
                    {(img.imageTags ?? []).length === 0 && <span class="muted">untagged</span>}
                    {(img.imageTags ?? []).map((t) => (
                      <span class="tag">{t}<button type="button" class="icon" aria-label={`Delete tag ${t}`} title={`Delete tag ${t}`} onClick={() => setDeleting({ image: img, tag: t })}>×</button></span>
                    ))}
                  </td>
                  <td><a href={link.image(name, img.imageDigest!)} class="mono">{shortDigest(img.imageDigest)}</a>
                    <button type="button" class="icon" aria-label={`Use ${shortDigest(img.imageDigest)} in the pull command`} title="Pull command for this image" onClick={() => setSelected(img.imageDigest!)}>⇩</button></td>
                  <td class="num">{bytes(img.imageSizeInBytes)}</td>
                  <td title={when(img.imagePushedAt)}>{ago(img.imagePushedAt)}</td>
                  <td title={when(img.lastRecordedPullTime)}>{img.lastRecordedPullTime ? ago(img.lastRecordedPullTime) : 'never'}</td>
                  <td>{img.imageScanStatus?.status ? <>{img.imageScanStatus.status === 'COMPLETE' ? <Severity counts={img.imageScanFindingsSummary?.findingSeverityCounts as Record<string, number>} /> : <span class="muted">{img.imageScanStatus.status.toLowerCase().replace(/_/g, ' ')}</span>}</> : <span class="muted">not scanned</span>}</td>
                  <td><button type="button" class="danger small" onClick={() => setDeleting({ image: img, tag: null })} aria-label={`Delete image ${shortDigest(img.imageDigest)}`}>Delete</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && <button type="button" class="secondary" onClick={() => loadImages(next)}>Load more images</button>}
      {deleting && (
        <Confirm
          title={deleting.tag ? `Delete tag ${deleting.tag}?` : `Delete image ${shortDigest(deleting.image.imageDigest)}?`}
          confirmLabel={deleting.tag ? 'Delete tag' : 'Delete image'}
          busy={busy}
          onCancel={() => setDeleting(null)}
          onConfirm={remove}
        >
          <DeletionSummary deletion={deleting} name={name} />
        </Confirm>
      )}
    </section>
  );
}

function DeletionSummary({ deletion, name }: { deletion: Deletion; name: string }) {
  const tags = deletion.image.imageTags ?? [];
  const digest = shortDigest(deletion.image.imageDigest);
  if (deletion.tag) {
    const others = tags.filter((t) => t !== deletion.tag);
    return others.length > 0
      ? <p data-testid="deletion-summary">Removes the tag <strong>{deletion.tag}</strong> from {name}. The image {digest} stays, still tagged {others.join(', ')}.</p>
      : <p data-testid="deletion-summary"><strong>{deletion.tag}</strong> is the only tag of image {digest}: the image ({bytes(deletion.image.imageSizeInBytes)}) is deleted with it.</p>;
  }
  return (
    <p data-testid="deletion-summary">
      Deletes image {digest} ({bytes(deletion.image.imageSizeInBytes)}) from {name}
      {tags.length > 0 ? <>, and with it the tag{tags.length > 1 ? 's' : ''} <strong>{tags.join(', ')}</strong></> : ' (it has no tags)'}.
      {' '}Its layers are freed by garbage collection once no other image uses them.
    </p>
  );
}
