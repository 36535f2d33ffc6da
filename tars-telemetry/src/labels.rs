//! Bounded label values, as enums: a caller cannot invent a series by typo. A leaf module:
//! the stages (`stage`) and the domain handles (`domain`) both use it, and it uses neither.

macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $(#[doc = concat!("`", $value, "`")] $variant),+ }

        impl $name {
            /// Every value, in index order.
            pub const ALL: [$name; [$($value),+].len()] = [$($name::$variant),+];

            /// The label value as exposed.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $value),+ }
            }

            /// The value's index in [`Self::ALL`]: how bindings pass it across an FFI.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The value at `index` in [`Self::ALL`], if any.
            #[inline]
            pub const fn from_index(index: usize) -> Option<Self> {
                if index < Self::ALL.len() { Some(Self::ALL[index]) } else { None }
            }

            /// Parses the exposed label value.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($value => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// How an operation ended (`status` label).
    Outcome { Success => "success", Error => "error" }
);
label_enum!(
    /// A phase of a RAG query (`phase` label).
    RagPhase { Retrieval => "retrieval", Rerank => "rerank", Generation => "generation" }
);
label_enum!(
    /// A database operation (`operation` label).
    DbOperation {
        Select => "select", Insert => "insert", Update => "update", Delete => "delete",
        Upsert => "upsert", Transaction => "transaction", Other => "other",
    }
);
label_enum!(
    /// Which cache (`cache` label).
    CacheName { Redis => "redis", Embedding => "embedding" }
);
label_enum!(
    /// A cache operation (`operation` label).
    CacheOperation { Get => "get", Set => "set", Delete => "delete" }
);
label_enum!(
    /// A cache operation's result (`result` label).
    CacheResult { Hit => "hit", Miss => "miss", Ok => "ok", Error => "error" }
);
label_enum!(
    /// A kind of LLM token (`type` label): a partition of a call's tokens, each billed at
    /// its own price. `input` is the prompt tokens neither read from nor written to the
    /// provider's prompt cache; `output` the completion tokens other than reasoning.
    TokenKind {
        Input => "input", CacheRead => "cache_read", CacheWrite => "cache_write",
        Output => "output", Reasoning => "reasoning",
    }
);
label_enum!(
    /// Direction of a WebSocket message (`direction` label).
    Direction { Inbound => "inbound", Outbound => "outbound" }
);
label_enum!(
    /// HTTP request method; anything else is `_OTHER`, as the OpenTelemetry conventions say.
    Method {
        Get => "GET", Head => "HEAD", Post => "POST", Put => "PUT", Delete => "DELETE",
        Connect => "CONNECT", Options => "OPTIONS", Trace => "TRACE", Patch => "PATCH",
        Other => "_OTHER",
    }
);
label_enum!(
    /// The component an error came from (`component` label).
    Component {
        Rag => "rag", Llm => "llm", Embedding => "embedding", VectorStore => "vector_store",
        Redis => "redis", Database => "database", Http => "http", WebSocket => "websocket",
        Documents => "documents", Auth => "auth", Other => "other",
    }
);

impl Method {
    /// Parses a request method, mapping unknown ones to [`Method::Other`].
    ///
    /// ```
    /// use tars_telemetry::Method;
    /// assert_eq!(Method::from_request("POST"), Method::Post);
    /// assert_eq!(Method::from_request("BREW"), Method::Other);
    /// ```
    pub fn from_request(s: &str) -> Method {
        Method::parse(s).unwrap_or(Method::Other)
    }
}

pub(crate) use label_enum;
