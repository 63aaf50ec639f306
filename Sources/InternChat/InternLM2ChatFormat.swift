// Renders a conversation into the prompt InternLM2 chat models were trained on (ChatML plus the
// environment role and action tokens), as text and as ids. The one place in the project that knows the
// layout; `ChatOutputParser` is its inverse for model output.
//
//   <s><|im_start|>system\n{system}<|im_end|>\n
//   <|im_start|>system name=<|plugin|>\n[{tool}, ...]<|im_end|>\n        (tools declared)
//   <|im_start|>user\n{content}<|im_end|>\n
//   <|im_start|>assistant\n{content}<|action_start|><|plugin|>\n{"name": ..., "parameters": ...}<|action_end|><|im_end|>\n
//   <|im_start|>environment name=<|plugin|>\n{result}<|im_end|>\n
//   <|im_start|>assistant\n                                                (generation prompt)
//
// Ids: structural tokens are special ids; every piece of message text is encoded in plain mode, so
// content that spells `<|im_end|>` stays text and cannot end its message early (HF's tokenizer would
// turn it into the control token). Text between two special tokens is encoded as one segment, which
// gives exactly the ids of HF `apply_chat_template` for ordinary content.

public import InternTokenizer

/// A piece of a rendered prompt: a special token by name, or plain text.
public enum PromptSegment: Sendable, Equatable {
    case special(String)
    case text(String)
}

/// The InternLM2 chat format bound to a tokenizer.
public struct InternLM2ChatFormat: Sendable {
    public let tokenizer: any Tokenizer
    /// BOS and default system prompt; the layout of messages is ChatML either way.
    public let template: ChatTemplate

    /// Strings that end an assistant turn or an action; the engine stops on them.
    public static let stopStrings = ["<|im_end|>", "<|action_end|>"]

    /// The code-interpreter declaration of InternLM2-Chat (Lagent's `INTERPRETER_CN`).
    public static let defaultInterpreterPrompt =
        "你现在已经能够在一个有状态的 Jupyter 笔记本环境中运行 Python 代码。当你向 python 发送含有 Python 代码的消息时，它将在该环境中执行。这个工具适用于多种场景，如数据分析或处理（如数据操作和图形制作），复杂的计算问题（解决数学和物理难题），编程示例（理解编程概念或特性），文本处理和分析（比如文本分析和自然语言处理），机器学习和数据科学（用于展示模型训练和数据可视化），以及文件操作和数据导入（处理CSV、JSON等格式的文件）。"

    public init(tokenizer: any Tokenizer, template: ChatTemplate = .internLM2) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The ids of the special tokens that stop generation (`<|im_end|>`, `<|action_end|>`, and EOS).
    public var stopTokenIDs: [TokenID] {
        (Self.stopStrings.compactMap { tokenizer.specialTokenID($0) } + [tokenizer.eosTokenID].compactMap { $0 })
    }

    /// The prompt as segments.
    /// - Parameters:
    ///   - tools: declared as one `system name=<|plugin|>` message after the first system message (or first).
    ///   - interpreter: the interpreter declaration, if the code interpreter is on; placed before the tools.
    ///   - addGenerationPrompt: end with `<|im_start|>assistant\n` so the model answers.
    ///   - addBOS: start with `<s>`.
    public static func segments(
        for messages: [ChatMessage], tools: [ToolDeclaration] = [], interpreter: String? = nil,
        addGenerationPrompt: Bool = true, addBOS: Bool = true, defaultSystem: String? = nil
    ) -> [PromptSegment] {
        var all = messages
        if let defaultSystem, all.first?.role != .system { all.insert(.system(defaultSystem), at: 0) }
        var declarations: [ChatMessage] = []
        if let interpreter { declarations.append(ChatMessage(role: .system, content: interpreter, target: .interpreter)) }
        if !tools.isEmpty {
            let list = JSONValue.array(tools.map(\.function)).pythonJSON
            declarations.append(ChatMessage(role: .system, content: list, target: .plugin))
        }
        all.insert(contentsOf: declarations, at: all.first?.role == .system ? 1 : 0)

        var out: [PromptSegment] = addBOS ? [.special("<s>")] : []
        for message in all {
            out.append(.special("<|im_start|>"))
            if let target = message.target {
                out.append(.text(message.role.rawValue + " name="))
                out.append(.special(target.tokenName))
                out.append(.text("\n" + message.content))
            } else {
                out.append(.text(message.role.rawValue + "\n" + message.content))
            }
            for action in message.actions { out.append(contentsOf: segments(for: action)) }
            out.append(.special("<|im_end|>"))
            out.append(.text("\n"))
        }
        if addGenerationPrompt {
            out.append(.special("<|im_start|>"))
            out.append(.text("assistant\n"))
        }
        return out
    }

    /// An assistant action as the model writes it.
    public static func segments(for action: ChatAction) -> [PromptSegment] {
        switch action {
        case .plugin(let call):
            return [.special("<|action_start|>"), .special("<|plugin|>"), .text("\n" + call.json.pythonJSON), .special("<|action_end|>")]
        case .interpreter(let code):
            return [.special("<|action_start|>"), .special("<|interpreter|>"), .text("\n" + code), .special("<|action_end|>")]
        }
    }

    /// The prompt as text, special tokens written by name (what `intern template` shows).
    public static func text(of segments: [PromptSegment]) -> String {
        segments.map { if case .special(let name) = $0 { name } else if case .text(let t) = $0 { t } else { "" } }.joined()
    }

    /// The prompt ids: special tokens by id, the text between them encoded plainly as one segment.
    /// - Throws: `ChatFormatError` if the tokenizer lacks one of the special tokens.
    public func ids(of segments: [PromptSegment]) throws(ChatFormatError) -> [TokenID] {
        var ids: [TokenID] = []
        var pending = ""
        for segment in segments {
            switch segment {
            case .text(let t): pending += t
            case .special(let name):
                if !pending.isEmpty { ids += tokenizer.encode(pending) }
                pending = ""
                guard let id = tokenizer.specialTokenID(name) else {
                    throw ChatFormatError(path: "tokenizer", reason: "has no special token \(name)")
                }
                ids.append(id)
            }
        }
        if !pending.isEmpty { ids += tokenizer.encode(pending) }
        return ids
    }

    /// Convenience: render and tokenize a conversation.
    public func promptIDs(
        for messages: [ChatMessage], tools: [ToolDeclaration] = [], interpreter: String? = nil,
        addGenerationPrompt: Bool = true
    ) throws(ChatFormatError) -> [TokenID] {
        try ids(of: segments(for: messages, tools: tools, interpreter: interpreter, addGenerationPrompt: addGenerationPrompt))
    }

    /// The prompt of a conversation under this format's template.
    public func segments(
        for messages: [ChatMessage], tools: [ToolDeclaration] = [], interpreter: String? = nil,
        addGenerationPrompt: Bool = true
    ) -> [PromptSegment] {
        Self.segments(
            for: messages, tools: tools, interpreter: interpreter, addGenerationPrompt: addGenerationPrompt,
            addBOS: template.addsBOS, defaultSystem: template.defaultSystem)
    }
}
