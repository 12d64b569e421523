//! Typed indices: a service, a check (catalogue entry), a verdict plan and
//! an evidence slot each have their own id type, so that one can never be
//! used where another is meant. They number things in config order and are
//! valid for the config load that made them.
//!
//! This module holds only the types; what they index lives elsewhere.

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(usize);

        impl $name {
            /// The id of the `i`th item.
            pub const fn new(i: usize) -> $name {
                $name(i)
            }

            /// Its position in the list it indexes.
            pub const fn index(self) -> usize {
                self.0
            }
        }
    };
}

id!(
    /// A service, in the order of the config's `services`.
    ServiceId
);
id!(
    /// A check of the catalogue, in config order (service by service).
    EntryId
);
id!(
    /// A verdict plan of the catalogue.
    PlanId
);
id!(
    /// An evidence slot: what a round gathers for one verdict case.
    SlotId
);
