/** Repository names and tags, validated by the OCI distribution spec's grammar. */
import { BerthError } from '../errors/catalog.ts';

// From the distribution spec: <name> is path components of [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/'.
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Hostname plus name must fit 255 characters in references; ECR allows 256 for the name. */
export const MAX_NAME_LENGTH = 255;

export type RepositoryName = string & { readonly __repositoryName: unique symbol };
export type Tag = string & { readonly __tag: unique symbol };

export function isRepositoryName(value: string): value is RepositoryName {
  return value.length > 0 && value.length <= MAX_NAME_LENGTH && NAME.test(value);
}

export function parseRepositoryName(value: string): RepositoryName {
  if (isRepositoryName(value)) return value;
  throw new BerthError(
    'NAME_INVALID',
    `invalid repository name "${value.slice(0, 300)}": use lowercase letters, digits and separators (. _ __ -), components joined by "/", at most ${MAX_NAME_LENGTH} characters`,
  );
}

export function isTag(value: string): value is Tag {
  return TAG.test(value);
}

export function parseTag(value: string): Tag {
  if (isTag(value)) return value;
  throw new BerthError('TAG_INVALID', `invalid tag "${value.slice(0, 200)}": up to 128 characters of [A-Za-z0-9_.-], not starting with "." or "-"`);
}
