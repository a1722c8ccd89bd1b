/**
 * GET /berth/api/v1/repositories: the repositories the caller may describe (ecr:DescribeRepositories), with image
 * count, size and last push — what the console's repository list searches, sorts and pages through (ECR's
 * DescribeRepositories has no sizes or counts). Query: `q` (substring of the name), `sort` (name, size, images,
 * pushed), `order` (asc, desc), `offset`, `limit` (1–500).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessService, Principal } from '../../auth/service.ts';
import { BerthError } from '../../errors/catalog.ts';
import type { ConsoleStore } from '../../metadata/console-store.ts';
import type { RepositorySort, RepositorySummary, RepositorySummaryPage } from '../console/api.ts';

const SORTS: Record<RepositorySort, (a: RepositorySummary, b: RepositorySummary) => number> = {
  name: (a, b) => (a.repositoryName < b.repositoryName ? -1 : a.repositoryName > b.repositoryName ? 1 : 0),
  size: (a, b) => a.sizeInBytes - b.sizeInBytes,
  images: (a, b) => a.imageCount - b.imageCount,
  pushed: (a, b) => (a.lastPushedAt ?? -1) - (b.lastPushedAt ?? -1),
};

function whole(value: string | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new BerthError('INVALID_PARAMETER', `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

export async function repositorySummaries(store: ConsoleStore, access: AccessService, principal: Principal, query: Record<string, string | undefined>, ctx: { sourceIp?: string; secureTransport?: boolean }): Promise<RepositorySummaryPage> {
  const sort = (query.sort ?? 'name') as RepositorySort;
  if (!(sort in SORTS)) throw new BerthError('INVALID_PARAMETER', `sort must be one of ${Object.keys(SORTS).join(', ')}`);
  const order = query.order ?? (sort === 'name' ? 'asc' : 'desc');
  if (order !== 'asc' && order !== 'desc') throw new BerthError('INVALID_PARAMETER', 'order must be asc or desc');
  const offset = whole(query.offset, 0, 0, Number.MAX_SAFE_INTEGER, 'offset');
  const limit = whole(query.limit, 50, 1, 500, 'limit');
  const q = (query.q ?? '').trim().toLowerCase();
  const rows = await store.repositorySummaries();
  const visible: RepositorySummary[] = [];
  for (const r of rows) {
    if (q && !r.name.toLowerCase().includes(q)) continue;
    if (!(await access.isAllowed(principal, 'ecr:DescribeRepositories', r.name, ctx))) continue;
    visible.push({
      repositoryName: r.name, imageCount: r.imageCount, sizeInBytes: r.sizeBytes,
      lastPushedAt: r.lastPushedAt === null ? null : r.lastPushedAt / 1000, createdAt: r.createdAt / 1000,
    });
  }
  const compare = SORTS[sort];
  visible.sort(order === 'asc' ? compare : (a, b) => compare(b, a));
  return { total: visible.length, offset, limit, repositories: visible.slice(offset, offset + limit) };
}

export function registerRepositorySummaries(app: FastifyInstance, prefix: string, options: { access: AccessService; store?: ConsoleStore; caller: (request: FastifyRequest) => Promise<Principal> }): void {
  const store = options.store;
  if (!store) return;
  app.get(`${prefix}/repositories`, async (request, reply) => {
    request.routeFamily = 'berth_api';
    const principal = await options.caller(request);
    const page = await repositorySummaries(store, options.access, principal, request.query as Record<string, string | undefined>, { sourceIp: request.ip, secureTransport: request.protocol === 'https' });
    reply.header('content-type', 'application/json').send(JSON.stringify(page));
  });
}
