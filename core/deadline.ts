/**
 * The one way a deadline or a lease end is computed: `seconds` after `now`. Time is an input
 * (house rule 1), so `now` comes from the caller's clock, never from `Date.now()`.
 */
export function deadlineAfter(now: Date, seconds: number): Date {
  return new Date(now.getTime() + seconds * 1000);
}
