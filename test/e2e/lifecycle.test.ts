/**
 * ECR lifecycle policies end to end (LIFECYCLE.md §1, §7, §8), with the real AWS CLI v2 (`/usr/bin/aws`) against
 * Berth with access control on, and the `berth lifecycle` command that applies the policies.
 *
 * Ten small images are pushed over /v2 (tagged, multi-tagged, and by digest only), their push times are then moved
 * into the past directly in the metadata database (test set-up of stored state: the registry itself never lets a
 * client choose a push time), and the §8 Example 1 policy is put, previewed (start/get/wait, filters, paging) and
 * applied with `berth lifecycle run` — first `--dry-run`, then for real — after which exactly the images the spec
 * works out are gone (ECR API and /v2), the others still pull, and `berth lifecycle log` names each expiration.
 * The error cases the CLI prints for lifecycle operations are checked along the way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { AWS, awsCli } from '../helpers/aws.ts';
import { mainScript, repoRoot, startBerth, type BerthProcess } from '../helpers/berth.ts';
import { makeTempDir, removeTree, requireClients, run, type RunResult } from '../helpers/clients.ts';

const gate = requireClients([AWS]);

const DAY_MS = 86_400_000;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REPO = 'lc/app';
const OTHER = 'lc/other';
const EMPTY = 'lc/empty';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** LIFECYCLE.md §8 Example 1, pretty-printed with a description so that "verbatim" is not trivially true. */
const EXAMPLE_1 = `{
  "rules": [
    {
      "rulePriority": 1,
      "description": "keep the two newest releases",
      "selection": { "tagStatus": "tagged", "tagPatternList": ["release-*"], "countType": "imageCountMoreThan", "countNumber": 2 },
      "action": { "type": "expire" }
    },
    {
      "rulePriority": 2,
      "description": "dev builds live a week",
      "selection": { "tagStatus": "tagged", "tagPrefixList": ["dev"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7 },
      "action": { "type": "expire" }
    },
    {
      "rulePriority": 3,
      "selection": { "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1 },
      "action": { "type": "expire" }
    },
    {
      "rulePriority": 4,
      "description": "cap the repository",
      "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5 },
      "action": { "type": "expire" }
    }
  ]
}
`;

/** Only for a preview with supplied text: untagged images older than a day. */
const UNTAGGED_OLDER_THAN_A_DAY =
  '{"rules":[{"rulePriority":1,"description":"untagged images older than a day","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}';

/** For the second repository: keep only the newest image. */
const KEEP_NEWEST = '{"rules":[{"rulePriority":1,"description":"keep only the newest image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}';

/** The ten images of Example 1: tags and age in days. */
const SPEC_IMAGES: Record<string, { tags: string[]; days: number }> = {
  I1: { tags: ['release-1.0'], days: 40 },
  I2: { tags: ['release-1.1', 'dev-991'], days: 30 },
  I3: { tags: ['release-1.2', 'latest'], days: 20 },
  I4: { tags: ['dev-1001'], days: 10 },
  I5: { tags: ['dev-1002'], days: 5 },
  I6: { tags: [], days: 12 },
  I7: { tags: [], days: 3 },
  I8: { tags: ['feature-x'], days: 2 },
  I9: { tags: ['dev-1003', 'feature-y'], days: 1 },
  I10: { tags: ['feature-z'], days: 15 },
};
/** Example 1's result: image → the rule that expires it. */
const EXPECTED_EXPIRED: Record<string, number> = { I1: 1, I4: 2, I6: 3, I10: 4 };
const EXPECTED_KEPT = ['I2', 'I3', 'I5', 'I7', 'I8', 'I9'];

interface Pushed {
  name: string;
  digest: string;
  manifest: Buffer;
  blobs: Map<string, Buffer>;
  tags: string[];
  pushedAt: number;
}
interface ImageId {
  imageDigest?: string;
  imageTag?: string;
}
interface ImageDetail {
  imageDigest: string;
  imageTags?: string[];
  imagePushedAt: string;
}
interface PolicyOutput {
  registryId: string;
  repositoryName: string;
  lifecyclePolicyText: string;
  lastEvaluatedAt?: string;
}
interface PreviewResult {
  imageTags?: string[];
  imageDigest: string;
  imagePushedAt: string;
  action: { type: string };
  appliedRulePriority: number;
}
interface PreviewOutput {
  registryId: string;
  repositoryName: string;
  lifecyclePolicyText: string;
  status: string;
  previewResults: PreviewResult[];
  summary?: { expiringImageTotalCount: number };
  NextToken?: string;
}
interface Expiration {
  repositoryName: string;
  imageDigest: string;
  imageTags: string[];
  imagePushedAt: string;
  appliedRulePriority: number;
  action: string;
  actor: string;
  expiredAt: string;
}

describe('e2e: ECR lifecycle policies with the AWS CLI v2 and `berth lifecycle`', { skip: gate.skip }, () => {
  let server: BerthProcess | undefined;
  let work = '';
  let accountId = '';
  /** A CLI configuration that turns off the CLI's own parameter validation, so the server sees what it would reject. */
  let noClientValidation = '';
  /** Push times are whole seconds in the past (the API reports epoch seconds). */
  const base = Math.floor(Date.now() / 1000) * 1000;
  const images: Record<string, Pushed> = {};
  const others: Pushed[] = [];

  const it = (name: string, fn: () => Promise<void>) =>
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error && server) err.message += `\n--- berth output (last 6000 chars) ---\n${server.output().slice(-6000)}`;
        throw err;
      }
    });

  // ---- the AWS CLI -----------------------------------------------------------------------------

  const cli = awsCli(() => server!);
  const aws = (args: readonly string[], options: { check?: boolean; configFile?: string } = {}) => cli.aws(args, options);
  const awsJson = <T = Record<string, unknown>>(args: readonly string[]): Promise<T> => cli.json<T>(args);
  /** A CLI command that must fail with the service error `code`, printed the way the CLI prints service errors (exit 254). */
  const awsFails = (args: readonly string[], code: string, operation: string, configFile?: string): Promise<RunResult> => cli.fails(args, code, operation, { configFile });
  /** Writes a policy to a file and returns the CLI argument that reads it (`file://…`), as users pass documents. */
  let policyFiles = 0;
  const policyArg = async (text: string): Promise<string> => {
    const file = path.join(work, `policy-${++policyFiles}.json`);
    await writeFile(file, text);
    return `file://${file}`;
  };
  /** The message of an invalid lifecycle policy, as the CLI prints it. */
  const validationFailure = (operation: string, detail: string) =>
    new RegExp(`An error occurred \\(InvalidParameterException\\) when calling the ${operation} operation: ` +
      `Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ${detail}`);

  // ---- `berth lifecycle` -----------------------------------------------------------------------

  /** `berth lifecycle <args>` on the server's data (and its PostgreSQL database when it runs on one). */
  const berth = (args: readonly string[], check = true) =>
    run(process.execPath, ['--import', 'tsx', mainScript, 'lifecycle', ...args, '--data-dir', server!.dataDir], {
      cwd: repoRoot,
      check,
      timeoutMs: 120_000,
      env: {
        BERTH_DATA_DIR: undefined,
        BERTH_SQLITE_PATH: undefined,
        BERTH_METADATA_DRIVER: server!.metadata === 'postgres' ? 'postgres' : undefined,
        BERTH_POSTGRES_URL: server!.metadata === 'postgres' ? server!.postgresUrl : undefined,
      },
    });
  const lifecycleLog = async (repository?: string): Promise<Expiration[]> => {
    const r = await berth(['log', ...(repository ? ['--repository', repository] : [])]);
    return (JSON.parse(r.stdout) as { expirations: Expiration[] }).expirations;
  };

  // ---- /v2 with the administrator's key as Basic credentials -----------------------------------

  const v2 = (method: string, pathname: string, body?: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${server!.url}${pathname}`, {
      method,
      headers: { Authorization: server!.rootBasic, ...headers },
      ...(body ? { body: new Uint8Array(body) } : {}),
    });

  const pushBlob = async (repo: string, data: Buffer): Promise<string> => {
    const digest = sha256(data);
    const res = await v2('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, data, { 'content-type': 'application/octet-stream' });
    assert.equal(res.status, 201, `monolithic upload to ${repo}: ${res.status} ${await res.text()}`);
    return digest;
  };

  /** Pushes a distinct small OCI image under each of `tags`, or by its digest alone when there are none. */
  const pushImage = async (repo: string, name: string, tags: string[]): Promise<Pushed> => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Labels: { image: name } }, nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(300 + Object.keys(images).length);
    const blobs = new Map<string, Buffer>();
    for (const b of [config, layer]) blobs.set(await pushBlob(repo, b), b);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }));
    const digest = sha256(manifest);
    for (const reference of tags.length ? tags : [digest]) {
      const res = await v2('PUT', `/v2/${repo}/manifests/${reference}`, manifest, { 'content-type': OCI_MANIFEST });
      assert.equal(res.status, 201, `PUT ${repo}:${reference}: ${res.status} ${await res.text()}`);
      assert.equal(res.headers.get('docker-content-digest'), digest);
    }
    return { name, digest, manifest, blobs, tags, pushedAt: 0 };
  };

  const getManifest = async (repo: string, reference: string): Promise<{ status: number; bytes: Buffer; body: string }> => {
    const res = await v2('GET', `/v2/${repo}/manifests/${reference}`, undefined, { accept: OCI_MANIFEST });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, bytes, body: bytes.toString('utf8') };
  };

  /** Asserts the image pulls: manifest by digest and by each tag, byte-identical, and every blob. */
  const assertPulls = async (repo: string, img: Pushed): Promise<void> => {
    for (const reference of [img.digest, ...img.tags]) {
      const m = await getManifest(repo, reference);
      assert.equal(m.status, 200, `${img.name} (${repo}:${reference}) still pulls: ${m.status} ${m.body}`);
      assert.ok(m.bytes.equals(img.manifest), `${img.name} ${reference}: the manifest as pushed`);
    }
    for (const [digest, bytes] of img.blobs) {
      const b = await v2('GET', `/v2/${repo}/blobs/${digest}`);
      assert.equal(b.status, 200, `${img.name} blob ${digest}`);
      assert.ok(Buffer.from(await b.arrayBuffer()).equals(bytes), `${img.name} blob ${digest} content`);
    }
  };

  /** Asserts the image is gone from /v2: its manifest by digest and by every former tag is MANIFEST_UNKNOWN. */
  const assertGone = async (repo: string, img: Pushed): Promise<void> => {
    for (const reference of [img.digest, ...img.tags]) {
      const m = await getManifest(repo, reference);
      assert.equal(m.status, 404, `${img.name} (${repo}:${reference}) is gone: ${m.status}`);
      assert.equal((JSON.parse(m.body) as { errors: Array<{ code: string }> }).errors[0]!.code, 'MANIFEST_UNKNOWN', m.body);
    }
  };

  // ---- stored state ----------------------------------------------------------------------------

  /** Moves push times into the past, in the metadata database the server uses (manifests.pushed_at, epoch ms). */
  const setPushedAt = async (repo: string, times: Array<{ digest: string; pushedAt: number }>): Promise<void> => {
    const sql = 'UPDATE manifests SET pushed_at = $1 WHERE repository_id = (SELECT id FROM repositories WHERE name = $2) AND digest = $3';
    if (server!.metadata === 'postgres') {
      const client = new pg.Client({ connectionString: server!.postgresUrl });
      await client.connect();
      try {
        for (const t of times) {
          const r = await client.query(sql, [t.pushedAt, repo, t.digest]);
          assert.equal(r.rowCount, 1, `one manifests row for ${repo}@${t.digest}`);
        }
      } finally {
        await client.end();
      }
      return;
    }
    const db = new Database(path.join(server!.dataDir, 'berth.db'));
    try {
      db.pragma('busy_timeout = 10000');
      const update = db.prepare(sql.replace(/\$\d/g, '?'));
      for (const t of times) assert.equal(update.run(t.pushedAt, repo, t.digest).changes, 1, `one manifests row for ${repo}@${t.digest}`);
    } finally {
      db.close();
    }
  };

  const sortIds = (ids: ImageId[]) => [...ids].sort((a, b) => `${a.imageDigest}|${a.imageTag}`.localeCompare(`${b.imageDigest}|${b.imageTag}`));
  const idsOf = (names: string[]): ImageId[] =>
    names.flatMap((n) => {
      const img = images[n]!;
      return img.tags.length ? img.tags.map((t) => ({ imageDigest: img.digest, imageTag: t })) : [{ imageDigest: img.digest }];
    });
  const listImages = async (repo: string) => sortIds((await awsJson<{ imageIds: ImageId[] }>(['ecr', 'list-images', '--repository-name', repo])).imageIds);
  /** The preview entries Example 1 leads to: each expired image with its tags, push time, rule and EXPIRE. */
  const expectedPreview = (expired: Record<string, number>): PreviewResult[] =>
    Object.entries(expired).map(([n, rule]) => {
      const img = images[n]!;
      return {
        ...(img.tags.length ? { imageTags: [...img.tags].sort() } : {}),
        imageDigest: img.digest,
        imagePushedAt: new Date(img.pushedAt).toISOString(),
        action: { type: 'EXPIRE' },
        appliedRulePriority: rule,
      };
    }).sort((a, b) => a.imageDigest.localeCompare(b.imageDigest));
  /** Preview entries normalised for comparison: tags sorted, push time as ISO in UTC, ordered by digest. */
  const normalise = (results: PreviewResult[]): PreviewResult[] =>
    results.map((r) => ({
      ...r,
      ...(r.imageTags ? { imageTags: [...r.imageTags].sort() } : {}),
      imagePushedAt: new Date(Date.parse(r.imagePushedAt)).toISOString(),
    })).sort((a, b) => a.imageDigest.localeCompare(b.imageDigest));

  before(async () => {
    gate.assertPresent();
    // Lifecycle policies are applied only by `berth lifecycle run` here, never by the background scheduler.
    server = await startBerth({ auth: true, env: { BERTH_LIFECYCLE_INTERVAL_SECONDS: '0' } });
    work = await makeTempDir('lifecycle');
    noClientValidation = path.join(work, 'aws-config-no-validation');
    await writeFile(noClientValidation, '[default]\nparameter_validation = false\n');
  });

  after(async () => {
    if (work) await removeTree(work);
    await server?.dispose();
  });

  it('create-repository, push ten images over /v2 (tagged, multi-tagged, by digest), back-date their push times', async () => {
    const { repository } = await awsJson<{ repository: { registryId: string; repositoryName: string } }>(['ecr', 'create-repository', '--repository-name', REPO]);
    accountId = repository.registryId;
    assert.match(accountId, /^\d{12}$/);
    await aws(['ecr', 'create-repository', '--repository-name', OTHER]);
    await aws(['ecr', 'create-repository', '--repository-name', EMPTY]);

    for (const [name, spec] of Object.entries(SPEC_IMAGES)) images[name] = await pushImage(REPO, name, spec.tags);
    assert.equal(new Set(Object.values(images).map((i) => i.digest)).size, 10, 'ten distinct images');
    for (const [name, spec] of Object.entries(SPEC_IMAGES)) images[name]!.pushedAt = base - spec.days * DAY_MS;
    await setPushedAt(REPO, Object.values(images));

    others.push(await pushImage(OTHER, 'O1', ['old']), await pushImage(OTHER, 'O2', ['new']));
    others[0]!.pushedAt = base - 3 * DAY_MS;
    others[1]!.pushedAt = base - 1 * DAY_MS;
    await setPushedAt(OTHER, others);

    // The registry reports the stored push times, and every image with its tags.
    assert.deepEqual(await listImages(REPO), sortIds(idsOf(Object.keys(SPEC_IMAGES))));
    const { imageDetails } = await awsJson<{ imageDetails: ImageDetail[] }>(['ecr', 'describe-images', '--repository-name', REPO]);
    assert.equal(imageDetails.length, 10);
    for (const img of Object.values(images)) {
      const d = imageDetails.find((x) => x.imageDigest === img.digest);
      assert.ok(d, `${img.name} described`);
      assert.equal(Date.parse(d.imagePushedAt), img.pushedAt, `${img.name} imagePushedAt ${d.imagePushedAt}`);
      assert.deepEqual([...(d.imageTags ?? [])].sort(), [...img.tags].sort());
    }
  });

  it('without a policy: get/delete-lifecycle-policy → LifecyclePolicyNotFoundException, get-lifecycle-policy-preview → LifecyclePolicyPreviewNotFoundException', async () => {
    const get = await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', EMPTY], 'LifecyclePolicyNotFoundException', 'GetLifecyclePolicy');
    assert.match(get.stderr, new RegExp(`Lifecycle policy does not exist for the repository with name '${EMPTY}' in the registry with id '${accountId}'`));
    await awsFails(['ecr', 'delete-lifecycle-policy', '--repository-name', EMPTY], 'LifecyclePolicyNotFoundException', 'DeleteLifecyclePolicy');
    await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'GetLifecyclePolicy');

    const preview = await awsFails(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO], 'LifecyclePolicyPreviewNotFoundException', 'GetLifecyclePolicyPreview');
    assert.match(preview.stderr, new RegExp(`'${REPO}'`));
    await awsFails(['ecr', 'get-lifecycle-policy-preview', '--repository-name', EMPTY], 'LifecyclePolicyPreviewNotFoundException', 'GetLifecyclePolicyPreview');
    // Nothing to preview: no stored policy and no text given.
    await awsFails(['ecr', 'start-lifecycle-policy-preview', '--repository-name', EMPTY], 'LifecyclePolicyNotFoundException', 'StartLifecyclePolicyPreview');
    // A repository that does not exist.
    await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', 'lc/ghost'], 'RepositoryNotFoundException', 'GetLifecyclePolicy');
    await awsFails(['ecr', 'put-lifecycle-policy', '--repository-name', 'lc/ghost', '--lifecycle-policy-text', await policyArg(KEEP_NEWEST)], 'RepositoryNotFoundException', 'PutLifecyclePolicy');
  });

  it('a policy shorter than 100 characters: the CLI refuses it (252); the server answers InvalidParameterException with the validation-failure message', async () => {
    // Shorter than 100 characters: the CLI itself refuses (exit 252) and sends nothing …
    const short = '{"rules":[]}';
    const local = await aws(['ecr', 'put-lifecycle-policy', '--repository-name', REPO, '--lifecycle-policy-text', short], { check: false });
    assert.equal(local.code, 252, `${local.command}: client-side parameter validation exits 252\n${local.stderr}`);
    assert.match(local.stderr, /Invalid length for parameter lifecyclePolicyText, value: 12, valid min length: 100/);
    // … and with the CLI's validation off, the server refuses it.
    const served = await awsFails(['ecr', 'put-lifecycle-policy', '--repository-name', REPO, '--lifecycle-policy-text', short], 'InvalidParameterException', 'PutLifecyclePolicy', noClientValidation);
    assert.match(served.stderr, /Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: /, served.stderr);
    assert.match(served.stderr, /100/, 'names the minimum length');
    await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'GetLifecyclePolicy');
  });

  it('put-lifecycle-policy rejects invalid policies with InvalidParameterException and stores nothing', async () => {
    const invalid: Array<{ what: string; text: string; detail: RegExp | string }> = [
      {
        what: 'tagged without a prefix or pattern list',
        text: '{"rules":[{"rulePriority":1,"description":"tagged images, but which?","selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}',
        detail: 'Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED\\.',
      },
      {
        what: 'an any rule that is not the last one',
        text: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}',
        detail: 'Rule for tagStatus=ANY must have the lowest priority',
      },
      {
        what: 'countNumber 0',
        text: '{"rules":[{"rulePriority":1,"description":"zero is not a count","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}',
        detail: '.*minimum.*1.*0',
      },
      {
        what: 'not JSON',
        text: `rules: [ { rulePriority: 1, selection: { tagStatus: untagged, countType: imageCountMoreThan, countNumber: 1 } } ]`,
        detail: 'Could not map policyString into LifecyclePolicy\\.',
      },
      {
        what: 'duplicate rule priorities',
        text: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}',
        detail: '.*rulePriority',
      },
    ];
    for (const c of invalid) {
      assert.ok(c.text.length >= 100, `${c.what}: long enough to reach validation`);
      const r = await awsFails(['ecr', 'put-lifecycle-policy', '--repository-name', REPO, '--lifecycle-policy-text', await policyArg(c.text)], 'InvalidParameterException', 'PutLifecyclePolicy');
      assert.match(r.stderr, validationFailure('PutLifecyclePolicy', typeof c.detail === 'string' ? c.detail : c.detail.source), `${c.what}:\n${r.stderr}`);
    }
    // The same checks apply to a preview of supplied text.
    const r = await awsFails(['ecr', 'start-lifecycle-policy-preview', '--repository-name', REPO, '--lifecycle-policy-text', await policyArg(invalid[1]!.text)], 'InvalidParameterException', 'StartLifecyclePolicyPreview');
    assert.match(r.stderr, validationFailure('StartLifecyclePolicyPreview', 'Rule for tagStatus=ANY must have the lowest priority'));

    await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'GetLifecyclePolicy');
    await awsFails(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO], 'LifecyclePolicyPreviewNotFoundException', 'GetLifecyclePolicyPreview');
  });

  it('put-lifecycle-policy stores the text verbatim; get-lifecycle-policy echoes it; an invalid put leaves it in place', async () => {
    const put = await awsJson<PolicyOutput>(['ecr', 'put-lifecycle-policy', '--repository-name', REPO, '--lifecycle-policy-text', await policyArg(EXAMPLE_1)]);
    assert.deepEqual(put, { registryId: accountId, repositoryName: REPO, lifecyclePolicyText: EXAMPLE_1 });
    const got = await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', REPO]);
    assert.deepEqual(got, { registryId: accountId, repositoryName: REPO, lifecyclePolicyText: EXAMPLE_1 }, 'verbatim, and no lastEvaluatedAt before any run');

    const invalid = EXAMPLE_1.replace('"tagPrefixList": ["dev"], ', '');
    await awsFails(['ecr', 'put-lifecycle-policy', '--repository-name', REPO, '--lifecycle-policy-text', await policyArg(invalid)], 'InvalidParameterException', 'PutLifecyclePolicy');
    assert.equal((await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', REPO])).lifecyclePolicyText, EXAMPLE_1);

    const other = await awsJson<PolicyOutput>(['ecr', 'put-lifecycle-policy', '--repository-name', OTHER, '--lifecycle-policy-text', KEEP_NEWEST]);
    assert.equal(other.lifecyclePolicyText, KEEP_NEWEST);
  });

  it('start-lifecycle-policy-preview of supplied text: IN_PROGRESS, then COMPLETE with that text\'s results; the stored policy is unchanged', async () => {
    const started = await awsJson<{ registryId: string; repositoryName: string; lifecyclePolicyText: string; status: string }>(
      ['ecr', 'start-lifecycle-policy-preview', '--repository-name', REPO, '--lifecycle-policy-text', await policyArg(UNTAGGED_OLDER_THAN_A_DAY)],
    );
    assert.deepEqual(started, { registryId: accountId, repositoryName: REPO, lifecyclePolicyText: UNTAGGED_OLDER_THAN_A_DAY, status: 'IN_PROGRESS' });
    const preview = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO]);
    assert.equal(preview.status, 'COMPLETE');
    assert.equal(preview.lifecyclePolicyText, UNTAGGED_OLDER_THAN_A_DAY);
    // Both untagged images are older than a day (12 d and 3 d).
    assert.deepEqual(normalise(preview.previewResults), expectedPreview({ I6: 1, I7: 1 }));
    assert.deepEqual(preview.summary, { expiringImageTotalCount: 2 });
    assert.equal((await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', REPO])).lifecyclePolicyText, EXAMPLE_1);
  });

  it('start-lifecycle-policy-preview of the stored policy, the CLI waiter, and get-lifecycle-policy-preview with Example 1\'s exact result', async () => {
    const started = await awsJson<{ registryId: string; repositoryName: string; lifecyclePolicyText: string; status: string }>(
      ['ecr', 'start-lifecycle-policy-preview', '--repository-name', REPO],
    );
    assert.deepEqual(started, { registryId: accountId, repositoryName: REPO, lifecyclePolicyText: EXAMPLE_1, status: 'IN_PROGRESS' });

    // The waiter polls GetLifecyclePolicyPreview until COMPLETE (its first poll is immediate).
    const wait = await aws(['ecr', 'wait', 'lifecycle-policy-preview-complete', '--repository-name', REPO]);
    assert.equal(wait.code, 0);
    assert.equal(wait.stdout, '');

    const preview = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO]);
    assert.equal(preview.registryId, accountId);
    assert.equal(preview.repositoryName, REPO);
    assert.equal(preview.lifecyclePolicyText, EXAMPLE_1);
    assert.equal(preview.status, 'COMPLETE');
    // §8 Example 1: I1 by rule 1, I4 by rule 2, I6 by rule 3, I10 by rule 4 — nothing else.
    assert.deepEqual(normalise(preview.previewResults), expectedPreview(EXPECTED_EXPIRED));
    assert.deepEqual(preview.summary, { expiringImageTotalCount: 4 });

    // Narrowed by tag status and by image id.
    const untagged = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO, '--filter', 'tagStatus=UNTAGGED']);
    assert.deepEqual(normalise(untagged.previewResults), expectedPreview({ I6: 3 }));
    const tagged = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO, '--filter', 'tagStatus=TAGGED']);
    assert.deepEqual(normalise(tagged.previewResults), expectedPreview({ I1: 1, I4: 2, I10: 4 }));
    const byId = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO, '--image-ids', `imageDigest=${images.I10!.digest}`, `imageDigest=${images.I3!.digest}`]);
    assert.deepEqual(normalise(byId.previewResults), expectedPreview({ I10: 4 }), 'only images the policy acts on are listed');

    // The CLI pages through the results: four pages of one.
    const paged = await aws(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO, '--page-size', '1', '--debug']);
    const all = JSON.parse(paged.stdout) as PreviewOutput;
    assert.deepEqual(normalise(all.previewResults), expectedPreview(EXPECTED_EXPIRED));
    assert.equal(paged.stderr.split('\n').filter((l) => l.includes('Making request for OperationModel(name=GetLifecyclePolicyPreview)')).length, 4);

    // A preview changes nothing.
    assert.deepEqual(await listImages(REPO), sortIds(idsOf(Object.keys(SPEC_IMAGES))));
  });

  it('berth lifecycle run --dry-run reports what would expire in every repository and removes nothing', async () => {
    const r = await berth(['run', '--dry-run']);
    const lines = r.stdout.trim().split('\n').sort();
    const expected = [
      ...Object.entries(EXPECTED_EXPIRED).map(([n, rule]) => {
        const img = images[n]!;
        return `would expire ${REPO}@${img.digest} tags=[${[...img.tags].sort().join(',')}] rule=${rule}`;
      }),
      `would expire ${OTHER}@${others[0]!.digest} tags=[old] rule=1`,
    ].sort();
    assert.deepEqual(lines, expected, r.stdout);
    assert.match(r.stderr, /would expire 5 image\(s\) in 2 repositories/);

    assert.deepEqual(await listImages(REPO), sortIds(idsOf(Object.keys(SPEC_IMAGES))), 'nothing removed');
    assert.equal((await listImages(OTHER)).length, 2);
    for (const img of Object.values(images)) await assertPulls(REPO, img);
    assert.deepEqual(await lifecycleLog(), [], 'nothing logged');
    const got = await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', REPO]);
    assert.equal(got.lastEvaluatedAt, undefined, 'a dry run is not an evaluation');
  });

  it('berth lifecycle run --repository expires exactly Example 1\'s four images; the rest still pull; the other repository is untouched', async () => {
    const startedAt = Date.now();
    const r = await berth(['run', '--repository', REPO]);
    const finishedAt = Date.now();
    const lines = r.stdout.trim().split('\n').sort();
    assert.deepEqual(lines, Object.entries(EXPECTED_EXPIRED).map(([n, rule]) => {
      const img = images[n]!;
      return `expired ${REPO}@${img.digest} tags=[${[...img.tags].sort().join(',')}] rule=${rule}`;
    }).sort(), r.stdout);
    assert.match(r.stderr, /expired 4 image\(s\) in 1 repositories/);

    // The ECR API: exactly the kept images, with their tags and push times.
    assert.deepEqual(await listImages(REPO), sortIds(idsOf(EXPECTED_KEPT)));
    const untagged = await awsJson<{ imageIds: ImageId[] }>(['ecr', 'list-images', '--repository-name', REPO, '--filter', 'tagStatus=UNTAGGED']);
    assert.deepEqual(untagged.imageIds, [{ imageDigest: images.I7!.digest }]);
    const { imageDetails } = await awsJson<{ imageDetails: ImageDetail[] }>(['ecr', 'describe-images', '--repository-name', REPO]);
    assert.deepEqual(imageDetails.map((d) => d.imageDigest).sort(), EXPECTED_KEPT.map((n) => images[n]!.digest).sort());
    for (const d of imageDetails) {
      const img = Object.values(images).find((i) => i.digest === d.imageDigest)!;
      assert.equal(Date.parse(d.imagePushedAt), img.pushedAt);
    }
    const described = await aws(['ecr', 'describe-images', '--repository-name', REPO, '--image-ids', 'imageTag=release-1.0'], { check: false });
    assert.equal(described.code, 254);
    assert.match(described.stderr, /ImageNotFoundException/);
    const batch = await awsJson<{ images: unknown[]; failures: Array<{ imageId: ImageId; failureCode: string }> }>(
      ['ecr', 'batch-get-image', '--repository-name', REPO, '--image-ids', `imageDigest=${images.I1!.digest}`, 'imageTag=feature-z'],
    );
    assert.deepEqual(batch.images, []);
    assert.deepEqual(batch.failures.map((f) => f.failureCode), ['ImageNotFound', 'ImageNotFound']);

    // /v2: expired images are gone by digest and by every tag; kept ones pull, manifest and blobs.
    for (const n of Object.keys(EXPECTED_EXPIRED)) await assertGone(REPO, images[n]!);
    for (const n of EXPECTED_KEPT) await assertPulls(REPO, images[n]!);
    // I2 carried release-1.1 and dev-991: kept whole (rule 1 selected it), not untagged by rule 2.
    assert.equal((await getManifest(REPO, 'dev-991')).status, 200);

    // The other repository has a policy too, but was not named.
    assert.deepEqual((await listImages(OTHER)).map((i) => i.imageTag).sort(), ['new', 'old']);

    // lastEvaluatedAt is the run's time.
    const got = await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', REPO]);
    assert.equal(got.lifecyclePolicyText, EXAMPLE_1);
    assert.ok(got.lastEvaluatedAt, `lastEvaluatedAt after a run: ${JSON.stringify(got)}`);
    const evaluated = Date.parse(got.lastEvaluatedAt);
    assert.ok(evaluated >= startedAt - 1000 && evaluated <= finishedAt + 1000, `lastEvaluatedAt ${got.lastEvaluatedAt} within the run [${new Date(startedAt).toISOString()}, ${new Date(finishedAt).toISOString()}]`);
    const notRun = await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', OTHER]);
    assert.equal(notRun.lastEvaluatedAt, undefined);

    // The preview taken before the run still reports what it saw (a fixed snapshot).
    const preview = await awsJson<PreviewOutput>(['ecr', 'get-lifecycle-policy-preview', '--repository-name', REPO]);
    assert.deepEqual(normalise(preview.previewResults), expectedPreview(EXPECTED_EXPIRED));
  });

  it('berth lifecycle log lists each expiration with its rule, tags, push time and actor cli', async () => {
    const log = await lifecycleLog(REPO);
    assert.equal(log.length, 4, JSON.stringify(log, null, 2));
    const byDigest = new Map(log.map((e) => [e.imageDigest, e]));
    for (const [n, rule] of Object.entries(EXPECTED_EXPIRED)) {
      const img = images[n]!;
      const e = byDigest.get(img.digest);
      assert.ok(e, `${n} logged`);
      assert.equal(e.repositoryName, REPO);
      assert.deepEqual([...e.imageTags].sort(), [...img.tags].sort());
      assert.equal(e.imagePushedAt, new Date(img.pushedAt).toISOString());
      assert.equal(e.appliedRulePriority, rule);
      assert.equal(e.action, 'expire');
      assert.equal(e.actor, 'cli');
      assert.ok(Date.parse(e.expiredAt) > base - 60_000 && Date.parse(e.expiredAt) <= Date.now(), `expiredAt ${e.expiredAt}`);
    }
    assert.deepEqual(await lifecycleLog(OTHER), []);
    assert.equal((await lifecycleLog()).length, 4);
  });

  it('a second run over every repository expires nothing more in the first and applies the other\'s policy', async () => {
    const r = await berth(['run']);
    assert.deepEqual(r.stdout.trim().split('\n'), [`expired ${OTHER}@${others[0]!.digest} tags=[old] rule=1`], r.stdout);
    assert.match(r.stderr, /expired 1 image\(s\) in 2 repositories/);
    assert.deepEqual(await listImages(REPO), sortIds(idsOf(EXPECTED_KEPT)), 'the policy is idempotent');
    assert.deepEqual(await listImages(OTHER), [{ imageDigest: others[1]!.digest, imageTag: 'new' }]);
    await assertGone(OTHER, others[0]!);
    await assertPulls(OTHER, others[1]!);

    const log = await lifecycleLog();
    assert.equal(log.length, 5);
    assert.deepEqual(log[0]!.repositoryName, OTHER, 'newest first');
    assert.equal(log[0]!.imageDigest, others[0]!.digest);
    assert.equal(log[0]!.actor, 'cli');
    assert.ok((await awsJson<PolicyOutput>(['ecr', 'get-lifecycle-policy', '--repository-name', OTHER])).lastEvaluatedAt);
  });

  it('delete-lifecycle-policy returns the text; afterwards get and delete fail, and `berth lifecycle run --repository` refuses', async () => {
    const deleted = await awsJson<PolicyOutput>(['ecr', 'delete-lifecycle-policy', '--repository-name', REPO]);
    assert.equal(deleted.registryId, accountId);
    assert.equal(deleted.repositoryName, REPO);
    assert.equal(deleted.lifecyclePolicyText, EXAMPLE_1);
    assert.ok(deleted.lastEvaluatedAt, 'lastEvaluatedAt of the deleted policy');

    await awsFails(['ecr', 'get-lifecycle-policy', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'GetLifecyclePolicy');
    await awsFails(['ecr', 'delete-lifecycle-policy', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'DeleteLifecyclePolicy');
    await awsFails(['ecr', 'start-lifecycle-policy-preview', '--repository-name', REPO], 'LifecyclePolicyNotFoundException', 'StartLifecyclePolicyPreview');

    const refused = await berth(['run', '--repository', REPO], false);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`repository ${REPO} has no lifecycle policy`));
    assert.deepEqual(await listImages(REPO), sortIds(idsOf(EXPECTED_KEPT)), 'nothing changed');
  });
});
