public enum ChatPlaceholder {}
