/**
 * Java archives (jar, war, ear, par): every `META-INF/maven/<group>/<artifact>/pom.properties` inside
 * names a Maven artifact that was packed in, the archive's own and those of shaded dependencies. Archives
 * nested one level deep (Spring Boot's BOOT-INF/lib, WEB-INF/lib) are opened from memory.
 *
 * Not done: the MANIFEST.MF and file-name fallbacks for jars without pom.properties (they give no
 * reliable groupId, so matching them against Maven advisories would guess).
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { DetectedPackage, ExtractorOutput, FileExtractor } from '../layers/extractor.ts';

const ARCHIVE = /\.(jar|war|ear|par)$/i;
const POM_PROPERTIES = /^META-INF\/maven\/[^/]+\/[^/]+\/pom\.properties$/;
const MAX_POM_PROPERTIES = 64 * 1024;
const MAX_NESTED_ARCHIVE = 64 * 1024 * 1024;

export function isJavaArchive(path: string): boolean {
  return ARCHIVE.test(path);
}

/** Java .properties: `key=value` or `key: value`, `#`/`!` comments (no line continuations needed here). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const match = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (match) out.set(match[1], match[2].trim());
  }
  return out;
}

export function packageFromPomProperties(text: string): DetectedPackage | null {
  const props = parseProperties(text);
  const group = props.get('groupId');
  const artifact = props.get('artifactId');
  const version = props.get('version');
  if (!group || !artifact || !version) return null;
  return { kind: 'maven', name: `${group}:${artifact}`, version };
}

function readStream(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) stream.destroy(new Error(`zip entry larger than ${limit} bytes`));
      else chunks.push(chunk);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) return reject(err);
      readStream(stream, limit).then(resolve, reject);
    });
  });
}

/** Calls `visit` for every entry, one at a time (yauzl's lazy mode keeps memory flat). */
function eachEntry(zip: yauzl.ZipFile, visit: (entry: yauzl.Entry) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      visit(entry).then(() => zip.readEntry(), reject);
    });
    zip.on('end', () => resolve());
    zip.on('error', reject);
    zip.readEntry();
  });
}

const ZIP_OPTIONS: yauzl.Options = { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true };

function openFile(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => yauzl.open(file, ZIP_OPTIONS, (err, zip) => (err ? reject(err) : resolve(zip))));
}

function openBuffer(buffer: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => yauzl.fromBuffer(buffer, ZIP_OPTIONS, (err, zip) => (err ? reject(err) : resolve(zip))));
}

/** Packages of one archive; `nested` tells whether archives inside it are opened too. */
async function scanArchive(zip: yauzl.ZipFile, nested: boolean, found: DetectedPackage[]): Promise<void> {
  try {
    await eachEntry(zip, async (entry) => {
      if (entry.isEncrypted()) return;
      if (POM_PROPERTIES.test(entry.fileName) && entry.uncompressedSize <= MAX_POM_PROPERTIES) {
        const pkg = packageFromPomProperties((await readEntry(zip, entry, MAX_POM_PROPERTIES)).toString('utf8'));
        if (pkg) found.push(pkg);
      } else if (nested && ARCHIVE.test(entry.fileName) && entry.uncompressedSize <= MAX_NESTED_ARCHIVE) {
        const inner = await readEntry(zip, entry, MAX_NESTED_ARCHIVE);
        // A damaged inner archive should not cost us the outer one's packages.
        const innerZip = await openBuffer(inner).catch(() => null);
        if (innerZip) await scanArchive(innerZip, false, found).catch(() => undefined);
      }
    });
  } finally {
    zip.close();
  }
}

export async function scanJavaArchive(file: string): Promise<DetectedPackage[]> {
  const found: DetectedPackage[] = [];
  await scanArchive(await openFile(file), true, found);
  const seen = new Set<string>();
  return found.filter((pkg) => {
    const key = `${pkg.name}@${pkg.version}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export const javaArchiveExtractor: FileExtractor = {
  id: 'java-archive',
  version: 1,
  category: 'language',
  input: 'file',
  maxBytes: 256 * 1024 * 1024,
  interested: isJavaArchive,
  async parseFile(_path, file): Promise<ExtractorOutput | null> {
    const packages = await scanJavaArchive(file);
    return packages.length > 0 ? { packages } : null;
  },
};
