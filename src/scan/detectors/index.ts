/**
 * The extractors a scan runs, in the order the walker asks them: a file goes to the first one interested,
 * so the path-specific ones come before the Go one, which takes any executable.
 */
import type { Extractor } from '../layers/extractor.ts';
import { apkExtractor } from './apk.ts';
import { dpkgFilesExtractor, dpkgStatusExtractor } from './dpkg.ts';
import { goBinaryExtractor } from './go.ts';
import { javaArchiveExtractor } from './java.ts';
import { npmLockExtractor, npmPackageExtractor } from './npm.ts';
import { osReleaseExtractor } from './os-release.ts';
import { pythonExtractor } from './python.ts';
import { rpmBdbExtractor, rpmSqliteExtractor } from './rpm.ts';

export function defaultExtractors(): Extractor[] {
  return [
    osReleaseExtractor,
    dpkgStatusExtractor,
    dpkgFilesExtractor,
    apkExtractor,
    rpmSqliteExtractor,
    rpmBdbExtractor,
    npmPackageExtractor,
    npmLockExtractor,
    pythonExtractor,
    javaArchiveExtractor,
    goBinaryExtractor,
  ];
}

export {
  apkExtractor,
  dpkgFilesExtractor,
  dpkgStatusExtractor,
  goBinaryExtractor,
  javaArchiveExtractor,
  npmLockExtractor,
  npmPackageExtractor,
  osReleaseExtractor,
  pythonExtractor,
  rpmBdbExtractor,
  rpmSqliteExtractor,
};
