//! Which Eureka server to ask, pure: the servers in their configured order,
//! starting from the one that answered last (Eureka's sticky choice, as its
//! `RetryableEurekaHttpClient` keeps the last working endpoint).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The sticky server choice over `n` servers. Lock-free.
#[derive(Debug)]
pub struct ServerChoice {
    n: usize,
    sticky: AtomicUsize,
}

impl ServerChoice {
    /// A choice over `n` servers, starting with the first.
    pub fn new(n: usize) -> Self {
        ServerChoice {
            n,
            sticky: AtomicUsize::new(0),
        }
    }

    /// The order to try: the sticky server, then the others in configured
    /// order after it, wrapping around.
    pub fn order(&self) -> impl Iterator<Item = usize> + use<> {
        let n = self.n;
        let start = self.current();
        (0..n).map(move |k| (start + k) % n)
    }

    /// The server tried first.
    pub fn current(&self) -> usize {
        self.sticky.load(Ordering::Relaxed)
    }

    /// Server `i` answered: ask it first from now on.
    pub fn succeeded(&self, i: usize) {
        if i < self.n {
            self.sticky.store(i, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_server_stays_first_until_it_fails() {
        let c = ServerChoice::new(3);
        assert_eq!(c.order().collect::<Vec<_>>(), [0, 1, 2]);
        // 0 failed, 1 answered: 1 is sticky, and 0 is tried last.
        c.succeeded(1);
        assert_eq!(c.order().collect::<Vec<_>>(), [1, 2, 0]);
        // 1 keeps answering: nothing moves back to 0 on its own.
        c.succeeded(1);
        assert_eq!(c.current(), 1);
        c.succeeded(7);
        assert_eq!(c.current(), 1, "out of range is ignored");
        assert_eq!(ServerChoice::new(0).order().count(), 0);
    }
}
