//! Test helpers shared by veriface's test suites: fixtures, golden data, real servers started on loopback.
