/**
 * The shape of one ECR operation: its name, input schema, the permission it needs, and its handler. A handler
 * parses nothing itself (the router validated its input), makes one call into the domain (`ecr`, `images`,
 * `lifecycle`, `scans`, `pullThrough`, `templates`, `access`) and shapes the answer.
 */
import type { z } from 'zod/v3';
import type { Logger } from 'pino';
import type { AccessService, Principal, RequestContext } from '../../auth/service.ts';
import type { RegistryService } from '../../registry/service.ts';
import type { EcrDomain, Repository, RepositoryRef } from '../../registry/ecr.ts';
import type { EcrImages } from '../../registry/ecr-images.ts';
import type { LifecycleService } from '../../lifecycle/service.ts';
import type { ScanService } from '../../scan/service.ts';
import type { PullThroughRules } from '../../pullthrough/rules.ts';
import type { RepositoryCreationTemplates } from '../../pullthrough/templates.ts';
import type { ReplicationService } from '../../replication/service.ts';

export interface EcrContext {
  principal: Principal;
  access: AccessService;
  registry: RegistryService;
  ecr: EcrDomain;
  images: EcrImages;
  lifecycle: LifecycleService;
  scans: ScanService;
  pullThrough: PullThroughRules;
  templates: RepositoryCreationTemplates;
  replication: ReplicationService;
  /** host[:port] for repositoryUri/proxyEndpoint: configured, or the request's Host. */
  registryHost: string;
  /** `https` or `http`, for proxyEndpoint and download URLs. */
  scheme: string;
  request: RequestContext;
  log: Logger;
}

export interface EcrAction<S extends z.ZodType = z.ZodType> {
  name: string;
  input: S;
  /**
   * The repository the operation's permission (`ecr:<name>`) applies to, or null for `*`. Operations that decide
   * per item (DescribeRepositories without names) set `authorizeInHandler` instead.
   */
  resource?: (input: z.infer<S>) => string | null;
  authorizeInHandler?: boolean;
  /**
   * The repository the operation acts on. The router resolves it once, after authorization (so a caller who may not
   * act learns nothing about existence), as RepositoryNotFoundException when missing, and hands it to `handle`.
   */
  repository?: (input: z.infer<S>, ecr: EcrDomain) => RepositoryRef;
  handle(input: z.infer<S>, ctx: EcrContext, repository: Repository | undefined): Promise<Record<string, unknown>>;
}

/** An operation on no particular repository (or one that resolves repositories itself, per item). */
export function defineAction<S extends z.ZodType>(action: Omit<EcrAction<S>, 'repository'>): EcrAction<S> {
  return action;
}

type NamesRepository = { repositoryName: string; registryId?: string | null };

export interface RepositoryActionDefinition<S extends z.ZodType> {
  name: string;
  input: S;
  /** Which repository: by default the input's `repositoryName` and `registryId`. */
  repository?: (input: z.infer<S>, ecr: EcrDomain) => RepositoryRef;
  /** The authorization resource: by default the repository's name. */
  resource?: (input: z.infer<S>) => string | null;
  handle(input: z.infer<S>, ctx: EcrContext, repository: Repository): Promise<Record<string, unknown>>;
}

/** An operation on one repository: the router authorizes on it, resolves it once and passes it to `handle`. */
export function defineRepositoryAction<S extends z.ZodType>(action: RepositoryActionDefinition<S>): EcrAction<S> {
  const locate = action.repository ?? ((input: z.infer<S>) => {
    const i = input as NamesRepository;
    return { name: i.repositoryName, registryId: i.registryId };
  });
  return {
    name: action.name,
    input: action.input,
    resource: action.resource ?? ((input) => (input as NamesRepository).repositoryName),
    repository: locate,
    handle: (input, ctx, repository) => action.handle(input, ctx, repository!),
  };
}
