//! Spring Cloud Config wire types: `Environment` and `PropertySource`.
