/**
 * Kubernetes' naming rules (DNS-1123), written once: config names and namespaces, backup names,
 * label-key prefixes, and the names the local API server accepts all use these patterns.
 */
const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';

/** A DNS-1123 subdomain without anchors, for patterns that embed one (a label key's prefix). */
export const DNS_SUBDOMAIN_PATTERN = `${LABEL}(\\.${LABEL})*`;

/** A DNS-1123 label; its length limit (63) is the caller's to state, as backup names allow more. */
export const DNS_LABEL = new RegExp(`^${LABEL}$`);

/** A DNS-1123 subdomain: labels joined by dots (most Kubernetes object names). */
export const DNS_SUBDOMAIN = new RegExp(`^${DNS_SUBDOMAIN_PATTERN}$`);

/** What a DNS label may hold, as an error message says it. */
export const DNS_LABEL_RULE = 'must be lowercase letters, digits and "-", starting and ending with a letter or digit';
