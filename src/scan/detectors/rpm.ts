/**
 * RHEL-family, Fedora, Amazon and SUSE: the rpm database. Its header blobs are the same in every backend;
 * only the container differs:
 * - `rpmdb.sqlite` (Fedora 33+, RHEL 9, AL2023): table `Packages(hnum, blob)`. rpm leaves a `-wal` file
 *   beside it, so the sqlite extractor waits for the end of the layer and opens the database next to its
 *   WAL (read-only, from a private temporary copy);
 * - `Packages` (BerkeleyDB hash; RHEL/CentOS ≤ 8, AL2): read with our own page walker.
 * The ndb backend (`Packages.db`, SUSE) is not read.
 *
 * The database may sit in var/lib/rpm, usr/lib/sysimage/rpm or usr/share/rpm; which one the image really
 * uses (var/lib/rpm is a symlink on Fedora 36+) is decided by the squash.
 */
import Database from 'better-sqlite3';
import type { ExtractorOutput, FileExtractor } from '../layers/extractor.ts';
import { baseName, dirName } from '../layers/extractor.ts';
import { BdbHashReader } from './bdb.ts';
import { collectRpmPackages } from './rpm-header.ts';

export const RPM_DIRS = ['var/lib/rpm', 'usr/lib/sysimage/rpm', 'usr/share/rpm'];
export const RPM_SQLITE = 'rpmdb.sqlite';
export const RPM_BDB = 'Packages';

function inRpmDir(path: string): boolean {
  return RPM_DIRS.includes(dirName(path));
}

function toOutput(blobs: Iterable<Buffer>): ExtractorOutput {
  const { packages, ownedFiles } = collectRpmPackages(blobs);
  return { packages, ownedFiles };
}

export const rpmSqliteExtractor: FileExtractor = {
  id: 'rpm-sqlite',
  version: 1,
  category: 'os-packages',
  input: 'file',
  deferred: true,
  maxBytes: 256 * 1024 * 1024,
  interested(path) {
    if (!inRpmDir(path)) return false;
    const base = baseName(path);
    return base === RPM_SQLITE || base === `${RPM_SQLITE}-wal`;
  },
  async parseFile(path, file) {
    // The WAL was only fetched to sit next to the database; it has nothing of its own to report.
    if (baseName(path) !== RPM_SQLITE) return null;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT blob FROM Packages ORDER BY hnum').iterate() as IterableIterator<{ blob: Buffer }>;
      return toOutput((function* () {
        for (const row of rows) if (Buffer.isBuffer(row.blob)) yield row.blob;
      })());
    } finally {
      db.close();
    }
  },
};

export const rpmBdbExtractor: FileExtractor = {
  id: 'rpm-bdb',
  version: 1,
  category: 'os-packages',
  input: 'file',
  maxBytes: 512 * 1024 * 1024,
  interested: (path) => inRpmDir(path) && baseName(path) === RPM_BDB,
  async parseFile(_path, file) {
    const reader = new BdbHashReader(file);
    try {
      return toOutput(reader.values());
    } finally {
      reader.close();
    }
  },
};
