// `/#host=<hostname>`: a link to the page with a host selected. The page
// follows the hash while open (a link followed, the address edited), and keeps
// it naming the host selected in the page.

/** The hostname the address names (null: none). */
export function hostLinked() {
  return new URLSearchParams(location.hash.slice(1)).get("host");
}

/**
 * Make the address name `hostname` (null: no host).
 *
 * `replaceState` fires no `hashchange` (setting `location.hash` would), so a
 * selection made in the page never comes back as a selection asked by the
 * address, and adds no history entry per click.
 */
export function hostLink(hostname) {
  history.replaceState(null, "", hostname ? `#host=${encodeURIComponent(hostname)}` : location.pathname);
}

/** Call `onHost(hostname or null)` whenever the address's hash changes. */
export function hostLinkFollow(onHost) {
  window.addEventListener("hashchange", () => onHost(hostLinked()));
}
