// The conversation model of InternLM2's chat protocol: ChatML roles including `environment` (tool
// results), assistant actions (plugin calls and interpreter code) and tool declarations.
// Follows LMDeploy's InternLM2 template and Lagent's protocol:
// https://github.com/InternLM/lmdeploy/blob/v0.5.0/lmdeploy/model.py (InternLM2Chat7B.messages2prompt).

/// A ChatML role. OpenAI's `tool` role is InternLM2's `environment`.
public enum ChatRole: String, Sendable, CaseIterable {
    case system, user, assistant, environment
}

/// Who a system or environment message is addressed to or comes from (`name=<|plugin|>`).
public enum ActionTarget: String, Sendable {
    case plugin, interpreter

    /// The special token that names the target in the prompt.
    public var tokenName: String { self == .plugin ? "<|plugin|>" : "<|interpreter|>" }
}

/// A call of a declared tool: `{"name": ..., "parameters": {...}}`.
public struct ToolCall: Sendable, Equatable {
    public var name: String
    /// Usually an object; kept as written.
    public var parameters: JSONValue

    public init(name: String, parameters: JSONValue) {
        self.name = name
        self.parameters = parameters
    }

    /// The JSON the model writes inside `<|action_start|><|plugin|>\n … <|action_end|>`.
    public var json: JSONValue { .object([("name", .string(name)), ("parameters", parameters)]) }
}

/// Something the assistant asks the runtime to do.
public enum ChatAction: Sendable, Equatable {
    case plugin(ToolCall)
    case interpreter(code: String)
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: String
    /// `name=<|plugin|>` / `name=<|interpreter|>` on system and environment messages.
    public var target: ActionTarget?
    /// Assistant actions, rendered after `content` in order.
    public var actions: [ChatAction]

    public init(role: ChatRole, content: String, target: ActionTarget? = nil, actions: [ChatAction] = []) {
        self.role = role
        self.content = content
        self.target = target
        self.actions = actions
    }

    public static func system(_ content: String) -> ChatMessage { .init(role: .system, content: content) }
    public static func user(_ content: String) -> ChatMessage { .init(role: .user, content: content) }
    public static func assistant(_ content: String, actions: [ChatAction] = []) -> ChatMessage {
        .init(role: .assistant, content: content, actions: actions)
    }
    /// A tool result (OpenAI's `tool` message).
    public static func environment(_ content: String, from target: ActionTarget = .plugin) -> ChatMessage {
        .init(role: .environment, content: content, target: target)
    }
}

/// A function the model may call, declared to it as JSON.
public struct ToolDeclaration: Sendable, Equatable {
    /// `{"name", "description", "parameters"}` as the user wrote it (OpenAI's `function` object).
    public var function: JSONValue

    public init(function: JSONValue) {
        self.function = function
    }

    public var name: String? { function["name"]?.stringValue }
}

/// Errors in a conversation given as JSON; the path names the offending field (`messages[2].role`).
public struct ChatFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

extension ChatMessage {
    /// Reads a message in OpenAI's JSON shape, also accepting InternLM2's own:
    /// `role` system|user|assistant|environment|tool, `content` (string, null, or a list of text parts),
    /// `name` plugin|interpreter, `tool_calls` [{"function": {"name", "arguments"}}] (arguments as a JSON
    /// string or object), and `code` for an interpreter call.
    public init(json: JSONValue, path: String = "message") throws(ChatFormatError) {
        guard case .object = json else { throw ChatFormatError(path: path, reason: "expected an object") }
        guard let roleValue = json["role"] else { throw ChatFormatError(path: "\(path).role", reason: "missing") }
        guard let roleName = roleValue.stringValue else { throw ChatFormatError(path: "\(path).role", reason: "expected a string") }
        let role: ChatRole
        if roleName == "tool" || roleName == "function" {
            role = .environment
        } else if let r = ChatRole(rawValue: roleName) {
            role = r
        } else {
            throw ChatFormatError(path: "\(path).role", reason: "unknown role '\(roleName)' (expected system, user, assistant, environment or tool)")
        }
        let content: String
        switch json["content"] {
        case nil, .null?: content = ""
        case .string(let s)?: content = s
        case .array(let parts)?:
            var text = ""
            for (i, part) in parts.enumerated() {
                guard let t = part["text"]?.stringValue else {
                    throw ChatFormatError(path: "\(path).content[\(i)]", reason: "only text parts are supported")
                }
                text += t
            }
            content = text
        default: throw ChatFormatError(path: "\(path).content", reason: "expected a string, null or a list of text parts")
        }
        var target: ActionTarget? = roleName == "tool" ? .plugin : nil
        if let name = json["name"] {
            guard let n = name.stringValue else { throw ChatFormatError(path: "\(path).name", reason: "expected a string") }
            // OpenAI puts the function name in `name` of tool messages; InternLM2 only knows plugin/interpreter.
            if let t = ActionTarget(rawValue: n) { target = t } else if role == .environment { target = .plugin }
        }
        var actions: [ChatAction] = []
        if let calls = json["tool_calls"], calls != .null {
            guard case .array(let list) = calls else { throw ChatFormatError(path: "\(path).tool_calls", reason: "expected a list") }
            for (i, call) in list.enumerated() {
                let callPath = "\(path).tool_calls[\(i)]"
                let function = call["function"] ?? call
                guard let name = function["name"]?.stringValue else {
                    throw ChatFormatError(path: "\(callPath).function.name", reason: "missing or not a string")
                }
                actions.append(.plugin(ToolCall(name: name, parameters: try Self.arguments(function, path: "\(callPath).function"))))
            }
        }
        if let code = json["code"] {
            guard let c = code.stringValue else { throw ChatFormatError(path: "\(path).code", reason: "expected a string") }
            actions.append(.interpreter(code: c))
        }
        if !actions.isEmpty && role != .assistant {
            throw ChatFormatError(path: "\(path).tool_calls", reason: "only assistant messages carry tool calls")
        }
        self.init(role: role, content: content, target: target, actions: actions)
    }

    /// `parameters`, or `arguments` (an object, or a JSON string holding one, as OpenAI sends it).
    static func arguments(_ function: JSONValue, path: String) throws(ChatFormatError) -> JSONValue {
        guard let raw = function["parameters"] ?? function["arguments"] else { return .object([]) }
        if case .string(let text) = raw {
            do {
                return try JSONValue(parsing: text.isEmpty ? "{}" : text)
            } catch {
                throw ChatFormatError(path: "\(path).arguments", reason: "not valid JSON: \(error)")
            }
        }
        return raw
    }

    /// Reads a list of messages (`[{...}, ...]`, or `{"messages": [...]}`).
    public static func conversation(json: JSONValue) throws(ChatFormatError) -> [ChatMessage] {
        let list: [JSONValue]
        if case .array(let items) = json {
            list = items
        } else if case .array(let items)? = json["messages"] {
            list = items
        } else {
            throw ChatFormatError(path: "messages", reason: "expected a list of messages")
        }
        var messages: [ChatMessage] = []
        for (i, item) in list.enumerated() { messages.append(try ChatMessage(json: item, path: "messages[\(i)]")) }
        return messages
    }
}

extension ToolDeclaration {
    /// Reads tools in OpenAI's shape (`[{"type": "function", "function": {...}}]`) or as bare function objects.
    public static func list(json: JSONValue) throws(ChatFormatError) -> [ToolDeclaration] {
        let items: [JSONValue]
        if case .array(let list) = json {
            items = list
        } else if case .array(let list)? = json["tools"] {
            items = list
        } else {
            throw ChatFormatError(path: "tools", reason: "expected a list of tools")
        }
        var tools: [ToolDeclaration] = []
        for (i, item) in items.enumerated() {
            let function = item["function"] ?? item
            guard case .object = function, function["name"]?.stringValue != nil else {
                throw ChatFormatError(path: "tools[\(i)].function.name", reason: "missing or not a string")
            }
            tools.append(ToolDeclaration(function: function))
        }
        return tools
    }
}
