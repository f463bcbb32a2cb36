//! sea-orm entities, one file per table. They describe the schema the migrations build; the store is the
//! only module that queries with them.

pub mod event;
