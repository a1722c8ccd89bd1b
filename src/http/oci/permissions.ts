/**
 * The ECR action each /v2 request needs — one permission vocabulary for both APIs. Pull needs ecr:BatchGetImage
 * (manifests, tags' targets, referrers) and ecr:GetDownloadUrlForLayer (blob bytes); a blob HEAD is the layer
 * availability check push clients make before uploading, so it needs ecr:BatchCheckLayerAvailability.
 */
import type { OciRoute } from './router.ts';

export function requiredAction(route: OciRoute, method: string): string | null {
  switch (route.kind) {
    case 'base':
      return null;
    case 'catalog':
      return 'ecr:DescribeRepositories';
    case 'tags':
      return 'ecr:ListImages';
    case 'referrers':
      return 'ecr:BatchGetImage';
    case 'manifest':
      if (method === 'PUT') return 'ecr:PutImage';
      if (method === 'DELETE') return 'ecr:BatchDeleteImage';
      return 'ecr:BatchGetImage';
    case 'blob':
      if (method === 'DELETE') return 'ecr:BatchDeleteImage';
      if (method === 'HEAD') return 'ecr:BatchCheckLayerAvailability';
      return 'ecr:GetDownloadUrlForLayer';
    case 'uploads':
      return 'ecr:InitiateLayerUpload';
    case 'upload':
      if (method === 'PUT') return 'ecr:CompleteLayerUpload';
      if (method === 'DELETE') return 'ecr:InitiateLayerUpload';
      return 'ecr:UploadLayerPart';
  }
}
