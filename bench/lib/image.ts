/**
 * Writes benchmark images directly as OCI image layouts (oci-layout, index.json, blobs/sha256/…),
 * with deterministic pseudo-random content: the same seed always gives the same bytes and digests.
 *
 * Layers are uncompressed tars (`application/vnd.oci.image.layer.v1.tar`) holding one file of
 * random bytes. skopeo would normally gzip such a layer when pushing to `docker://` (and when
 * writing to `oci:`), which would make the benchmark measure gzip; `skopeo copy --preserve-digests`
 * makes it stream the blob unchanged, so the registries receive exactly these bytes.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const MiB = 1024 * 1024;
export const KiB = 1024;

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export interface ImageSpec {
  /** Short name, also the directory name. */
  name: string;
  /** Payload bytes of each layer's single file (the tar adds 1.5 KiB). */
  layerBytes: number[];
  seed: number;
  /** The tag in index.json (`org.opencontainers.image.ref.name`). */
  tag: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface BuiltImage {
  spec: ImageSpec;
  /** The OCI layout directory. */
  dir: string;
  /** `oci:DIR:TAG` for skopeo. */
  ref: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Sum of layer sizes. */
  totalLayerBytes: number;
}

/** Deterministic pseudo-random bytes: the AES-256-CTR key stream of a key derived from the seed. */
class SeededStream {
  private readonly cipher;
  constructor(seed: string) {
    const key = createHash('sha256').update(`berth-bench:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  next(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }
}

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (offset: number, len: number, value: string) => h.write(value, offset, len, 'ascii');
  const octal = (value: number, len: number) => value.toString(8).padStart(len - 1, '0') + '\0';
  if (size > 0o77777777777) throw new Error('tar member too large for an octal size field');
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(size, 12));
  put(136, 12, octal(0, 12)); // mtime: fixed, for reproducible digests
  put(148, 8, '        ');
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

async function writeBlob(dir: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(path.join(dir, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

/** Streams a tar layer with one random file into blobs/sha256/, hashing as it goes. */
async function writeRandomTarLayer(dir: string, payload: number, seed: string): Promise<Descriptor> {
  const tmp = path.join(dir, 'blobs', `tmp-${process.pid}-${seed.replace(/\W/g, "-")}`);
  const fh = await open(tmp, 'w');
  const hash = createHash('sha256');
  let size = 0;
  const emit = async (buf: Buffer) => {
    hash.update(buf);
    size += buf.length;
    await fh.write(buf);
  };
  try {
    const rng = new SeededStream(seed);
    await emit(tarHeader('data/random.bin', payload));
    const chunk = 4 * MiB;
    for (let left = payload; left > 0; left -= chunk) await emit(rng.next(Math.min(chunk, left)));
    const pad = (512 - (payload % 512)) % 512;
    await emit(Buffer.alloc(pad + 1024)); // padding + two zero blocks (end of archive)
  } finally {
    await fh.close();
  }
  const hex = hash.digest('hex');
  await rename(tmp, path.join(dir, 'blobs', 'sha256', hex));
  return { mediaType: OCI_LAYER_TAR, digest: `sha256:${hex}`, size };
}

/**
 * Builds (or reuses, when a previous run left an identical one) the OCI layout for `spec` under `root`.
 */
export async function buildImage(root: string, spec: ImageSpec, log: (msg: string) => void): Promise<BuiltImage> {
  const dir = path.join(root, spec.name);
  const stamp = path.join(dir, 'bench-image.json');
  const specJson = JSON.stringify(spec);
  if (existsSync(stamp)) {
    try {
      const saved = JSON.parse(await readFile(stamp, 'utf8')) as { spec: string; image: BuiltImage };
      if (saved.spec === specJson && existsSync(path.join(dir, 'blobs', 'sha256', saved.image.layers[0]!.digest.slice(7)))) {
        return saved.image;
      }
    } catch {
      // rebuild
    }
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const total = spec.layerBytes.reduce((a, b) => a + b, 0);
  log(`building image ${spec.name}: ${spec.layerBytes.length} layer(s), ${formatBytes(total)} of random data (seed ${spec.seed})`);
  const started = Date.now();

  const layers: Descriptor[] = [];
  for (const [i, bytes] of spec.layerBytes.entries()) {
    layers.push(await writeRandomTarLayer(dir, bytes, `${spec.seed}/${i}`));
  }
  const config = await writeBlob(
    dir,
    Buffer.from(JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, // uncompressed: diff ID = digest
      history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'berth bench' })),
    })),
    OCI_CONFIG,
  );
  const manifest = await writeBlob(
    dir,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers })),
    OCI_MANIFEST,
  );
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': spec.tag } }],
  }));
  const image: BuiltImage = {
    spec,
    dir,
    ref: `oci:${dir}:${spec.tag}`,
    manifest,
    config,
    layers,
    totalLayerBytes: layers.reduce((a, l) => a + l.size, 0),
  };
  await writeFile(stamp, JSON.stringify({ spec: specJson, image }, null, 2));
  log(`built ${spec.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return image;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * MiB && n % (1024 * MiB) === 0) return `${n / (1024 * MiB)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return `${+(n / KiB).toFixed(1)} KiB`;
  return `${n} B`;
}
