//! Netflix Eureka wire types and their JSON and XML codecs.
