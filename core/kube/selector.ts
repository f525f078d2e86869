/**
 * Label selectors as the config writes them (`matchLabels` + `matchExpressions`) rendered in the
 * query-string syntax of the Kubernetes API (`a=b,c in (x,y),!d`).
 */
import type { LabelSelector } from '../config/schema.js';

/** Renders a selector for the `labelSelector` parameter of a list call. */
export function formatLabelSelector(selector: LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const expr of selector.matchExpressions ?? []) {
    switch (expr.operator) {
      case 'In':
        terms.push(`${expr.key} in (${(expr.values ?? []).join(',')})`);
        break;
      case 'NotIn':
        terms.push(`${expr.key} notin (${(expr.values ?? []).join(',')})`);
        break;
      case 'Exists':
        terms.push(expr.key);
        break;
      case 'DoesNotExist':
        terms.push(`!${expr.key}`);
        break;
    }
  }
  return terms.join(',');
}
