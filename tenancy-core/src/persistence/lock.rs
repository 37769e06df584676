/// The key of a PostgreSQL advisory lock taken by a tenancy-kit store.
///
/// Every store keys its locks this way (the schema upgrade, a billing customer's
/// serialisation, …): a stable 64-bit FNV-1a hash of `tenancy-kit:` followed by
/// `scope`. The prefix keeps them apart from the host's own advisory locks, and the
/// hash is computed here rather than with PostgreSQL's `hashtext`, whose values are
/// not guaranteed to stay the same across server versions.
///
/// ```
/// use tenancy_core::persistence::advisory_key;
///
/// assert_eq!(advisory_key("schema"), advisory_key("schema"));
/// assert_ne!(advisory_key("schema"), advisory_key("stripe-billing:customer:cus_1"));
/// ```
pub fn advisory_key(scope: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = b"tenancy-kit:"
        .iter()
        .chain(scope.as_bytes())
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
        });
    i64::from_le_bytes(hash.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::advisory_key;

    #[test]
    fn keys_are_stable_across_releases() {
        // Two processes of different releases must agree on the key, so it is pinned
        // (FNV-1a 64 of `tenancy-kit:schema`, computed independently).
        assert_eq!(advisory_key("schema"), 4_585_780_092_049_729_231);
        assert_ne!(advisory_key("a"), advisory_key("b"));
    }
}
