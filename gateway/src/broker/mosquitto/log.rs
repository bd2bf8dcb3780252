//! Reading Mosquitto's log lines (a pure function, so it is tested on the lines Mosquitto
//! 2.0.11 really writes).

/// What a log line means to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A login was refused: no, wrong or revoked credentials. The client id as logged
    /// (`<unknown>` for an MQTT 3.1.1 client that sent none).
    RefusedLogin(&'a str),
    /// An error or a warning.
    Problem,
    /// Anything else (connections, disconnections, start-up).
    Other,
}

/// Classifies one line of Mosquitto's log (`log_timestamp false`).
pub(crate) fn classify(line: &str) -> Line<'_> {
    if let Some(rest) = line.strip_prefix("Client ")
        && let Some(id) = rest.strip_suffix(" disconnected, not authorised.")
    {
        return Line::RefusedLogin(id);
    }
    if line.starts_with("Error") || line.starts_with("Warning") {
        return Line::Problem;
    }
    Line::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_mosquitto_writes() {
        assert_eq!(
            classify("Client <unknown> disconnected, not authorised."),
            Line::RefusedLogin("<unknown>")
        );
        assert_eq!(
            classify("Client hz-0001 disconnected, not authorised."),
            Line::RefusedLogin("hz-0001")
        );
        assert_eq!(
            classify("Error: Unable to open pwfile \"/x/passwd\"."),
            Line::Problem
        );
        assert_eq!(
            classify("Warning: Mosquitto should not be run as root/administrator."),
            Line::Problem
        );
        assert_eq!(
            classify("New client connected from 127.0.0.1:42756 as devA (p2, c1, k60, u'devA')."),
            Line::Other
        );
        assert_eq!(classify(""), Line::Other);
    }
}
